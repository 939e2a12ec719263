"""Small trainable heads on sentence embeddings, stored as plain arrays (no pickle).

:class:`LinearHead` is a multinomial logistic regression (scikit-learn) whose softmax is
calibrated by one temperature fitted on out-of-fold logits. :class:`LexicalFeatures` adds
TF-IDF word and character n-grams beside the embedding.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

Features: TypeAlias = "np.ndarray | sp.csr_matrix"
_VECTORIZERS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2)},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5)},
}
_TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(20.0), 201))
MIN_CALIBRATION_ROWS = 50


LARGE_CORPUS = 2000  # from this many texts, n-grams seen only once are dropped


def _vectorizer(kind: str, min_df: int = 1) -> TfidfVectorizer:
    return TfidfVectorizer(lowercase=True, sublinear_tf=True, dtype=np.float32, min_df=min_df,
                           **_VECTORIZERS[kind])


class LexicalFeatures:
    """TF-IDF word (1-2) and character (2-5) n-grams, each L2-normalised, times ``weight``."""

    def __init__(self, vectorizers: dict[str, TfidfVectorizer], weight: float) -> None:
        self.vectorizers = vectorizers
        self.weight = weight

    @classmethod
    def fit(cls, texts: Sequence[str], *, weight: float) -> LexicalFeatures:
        min_df = 2 if len(texts) >= LARGE_CORPUS else 1
        return cls({kind: _vectorizer(kind, min_df).fit(texts) for kind in _VECTORIZERS}, weight)

    @property
    def size(self) -> int:
        return sum(len(v.vocabulary_) for v in self.vectorizers.values())

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        parts = [v.transform(texts) for v in self.vectorizers.values()]
        return (sp.hstack(parts, format="csr") * self.weight).astype(np.float32)

    def vocabularies(self) -> dict[str, dict[str, int]]:
        return {kind: {term: int(i) for term, i in v.vocabulary_.items()}
                for kind, v in self.vectorizers.items()}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f"idf_{kind}": np.asarray(v.idf_, dtype=np.float64)
                for kind, v in self.vectorizers.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], vocabularies: dict[str, dict[str, int]],
                    *, weight: float) -> LexicalFeatures:
        vectorizers = {}
        for kind in _VECTORIZERS:
            vectorizer = _vectorizer(kind)
            vectorizer.vocabulary_ = dict(vocabularies[kind])
            vectorizer.idf_ = arrays[f"idf_{kind}"]
            if len(vectorizer.idf_) != len(vectorizer.vocabulary_):
                raise ValueError(f"{kind} vocabulary and idf sizes differ")
            vectorizers[kind] = vectorizer
        return cls(vectorizers, weight)


def features_of(vectors: np.ndarray, texts: Sequence[str],
                lexical: LexicalFeatures | None) -> Features:
    """Embedding rows, with the lexical features appended when there are any."""
    if lexical is None:
        return np.asarray(vectors, dtype=np.float32)
    return sp.hstack([sp.csr_matrix(vectors, dtype=np.float32), lexical.transform(texts)],
                     format="csr")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``targets``."""
    best, best_nll = 1.0, np.inf
    rows = np.arange(len(targets))
    for temperature in _TEMPERATURES:
        scaled = logits / temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        nll = float(np.mean(log_norm - scaled[rows, targets]))
        if nll < best_nll:
            best, best_nll = float(temperature), nll
    return best


@dataclass
class LinearHead:
    """Softmax(``(x @ coef.T + intercept) / temperature``) over ``classes``."""

    classes: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0

    @classmethod
    def fit(cls, features: Features, labels: Sequence[str], *, c: float,
            sample_weight: np.ndarray | None = None, calibrate: bool = True,
            calibration_rows: np.ndarray | None = None, seed: int = 0) -> LinearHead:
        """Fit the regression, then (if ``calibrate``) its temperature by k-fold.

        The temperature is fitted on the out-of-fold logits of ``calibration_rows`` (a boolean
        mask; default all rows) and stays 1.0 with fewer than ``MIN_CALIBRATION_ROWS`` of them.
        """
        classes = tuple(sorted(set(labels)))
        index = {name: i for i, name in enumerate(classes)}
        targets = np.array([index[label] for label in labels])
        model = _logistic(features, targets, c, sample_weight)
        head = cls(classes, _class_rows(model, len(classes)), _intercepts(model, len(classes)))
        mask = np.ones(len(targets), dtype=bool) if calibration_rows is None else calibration_rows
        if calibrate and mask.sum() >= MIN_CALIBRATION_ROWS:
            oof = _out_of_fold_logits(features, targets, c, sample_weight, len(classes), seed)
            if oof is not None:
                logits, usable = oof
                keep = usable & mask
                if keep.sum() >= MIN_CALIBRATION_ROWS:
                    head.temperature = fit_temperature(logits[keep], targets[keep])
        return head

    def logits(self, features: Features) -> np.ndarray:
        raw = features @ self.coef.T
        return np.asarray(raw, dtype=np.float64) + self.intercept

    def probabilities(self, features: Features) -> np.ndarray:
        return softmax(self.logits(features) / self.temperature)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef.astype(np.float32), "intercept": self.intercept,
                "temperature": np.array([self.temperature])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, classes: Sequence[str]) -> LinearHead:
        coef = np.ascontiguousarray(arrays["coef"], dtype=np.float32)
        intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        if coef.ndim != 2 or coef.shape[0] != len(classes) or intercept.shape != (len(classes),):
            raise ValueError("head arrays do not match the class list")
        return cls(tuple(classes), coef, intercept, float(arrays["temperature"][0]))


def _logistic(features: Features, targets: np.ndarray, c: float,
              sample_weight: np.ndarray | None) -> LogisticRegression:
    """Fit with one BLAS thread: the matrices are small, and on a shared 2-core machine two
    threads made a 8,000 x 384 fit ten times slower (24 s instead of 2.5 s)."""
    model = LogisticRegression(C=c, max_iter=3000)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, targets, sample_weight=sample_weight)
    return model


def _class_rows(model: LogisticRegression, n_classes: int) -> np.ndarray:
    """Coefficients as one row per class (binary problems store a single row)."""
    coef = np.asarray(model.coef_, dtype=np.float32)
    if n_classes == 2 and coef.shape[0] == 1:
        coef = np.vstack([-coef / 2, coef / 2])
    return coef


def _intercepts(model: LogisticRegression, n_classes: int) -> np.ndarray:
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if n_classes == 2 and intercept.shape[0] == 1:
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return intercept


def _out_of_fold_logits(features: Features, targets: np.ndarray, c: float,
                        sample_weight: np.ndarray | None, n_classes: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Out-of-fold logits and a mask of the rows they are valid for (None: too few examples).

    Rows whose class is missing from their fold's training part are not valid.
    """
    counts = np.bincount(targets, minlength=n_classes)
    folds = min(5 if len(targets) < 3000 else 3, int(counts.max()))
    if folds < 2 or np.median(counts) < 2:
        return None
    logits = np.zeros((len(targets), n_classes))
    usable = np.zeros(len(targets), dtype=bool)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes smaller than the fold count
        splits = list(splitter.split(np.zeros(len(targets)), targets))
    for train, held in splits:
        present = np.unique(targets[train])
        if len(present) < 2:
            continue
        weights = None if sample_weight is None else sample_weight[train]
        model = _logistic(features[train], targets[train], c, weights)
        rows = np.full((len(held), n_classes), -1e4)
        rows[:, present] = features[held] @ _class_rows(model, len(present)).T \
            + _intercepts(model, len(present))
        logits[held] = rows
        usable[held] = np.isin(targets[held], present)
    return logits, usable
