"""Message sentiment (negative / neutral / positive) and a running frustration signal.

The model is a calibrated logistic-regression head on sentence embeddings, trained on the
project's own labelled customer-service messages
(``adapters/classifiers/data/sentiment_train.csv``) and saved in a build folder as ``.npz`` +
JSON. :class:`Frustration` is a small immutable value a session keeps: exponentially decayed
negativity plus a negative streak.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters.classifiers.heads import LinearHead
from adapters.errors import ModelError, NotTrainedError
from retrieval.artifacts import Artifact, file_digest
from retrieval.embedder import Embedder

FORMAT_VERSION = 1
LABELS = ("negative", "neutral", "positive")
TRAINING_DATA = Path(__file__).parent / "data" / "sentiment_train.csv"
LOGISTIC_C = 4.0
_MENTION = re.compile(r"(?<!\w)@\w+")
_URL = re.compile(r"https?://\S+|www\.\S+")


def clean(text: str) -> str:
    """Drop @handles and links, which carry no sentiment; squeeze whitespace."""
    return " ".join(_URL.sub(" ", _MENTION.sub(" ", text)).split()) or text.strip()


def read_training_data(path: Path = TRAINING_DATA) -> list[tuple[str, str]]:
    """(text, label) rows of a ``label,text`` CSV; unknown labels are errors."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    bad = sorted({label for _, label in rows if label not in LABELS})
    if bad:
        raise ModelError(f"{path}: unknown sentiment label {bad[0]!r}; use one of {LABELS}")
    return rows


@dataclass(frozen=True)
class SentimentPrediction:
    """Sentiment of one message: its label, that label's probability, all probabilities."""

    label: str
    confidence: float
    scores: Mapping[str, float]

    @property
    def negativity(self) -> float:
        return float(self.scores.get("negative", 0.0))


class SentimentClassifier:
    """Predicts :class:`SentimentPrediction` for messages."""

    def __init__(self, head: LinearHead, embedder: Embedder, *,
                 manifest: dict[str, Any] | None = None) -> None:
        if set(head.classes) != set(LABELS):
            raise ModelError(f"a sentiment head needs the classes {LABELS}, got {head.classes}")
        self.head = head
        self.embedder = embedder
        self.manifest = dict(manifest or {})

    @classmethod
    def train(cls, embedder: Embedder, *, data: Path = TRAINING_DATA,
              c: float = LOGISTIC_C) -> SentimentClassifier:
        """Train on a ``label,text`` CSV (the packaged one by default)."""
        rows = read_training_data(data)
        vectors = embedder.embed([clean(text) for text, _ in rows])
        head = LinearHead.fit(vectors, [label for _, label in rows], c=c)
        manifest = {"model": embedder.name, "dimensions": int(vectors.shape[1]),
                    "data_sha256": file_digest(data), "examples": len(rows), "c": c,
                    "temperature": head.temperature}
        return cls(head, embedder, manifest=manifest)

    def predict(self, text: str) -> SentimentPrediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[SentimentPrediction]:
        vectors = self.embedder.embed([clean(text) for text in texts])
        return self.predict_vectors(vectors)

    def predict_vectors(self, vectors: np.ndarray) -> list[SentimentPrediction]:
        """Predict from embeddings computed already (same embedder; links/handles included)."""
        results = []
        for row in self.head.probabilities(np.asarray(vectors, dtype=np.float32)):
            best = int(np.argmax(row))
            scores = {label: float(p) for label, p in zip(self.head.classes, row, strict=True)}
            results.append(SentimentPrediction(self.head.classes[best], float(row[best]), scores))
        return results

    def save(self, directory: Path) -> None:
        """Write the head (.npz) and manifest (JSON) atomically."""
        manifest = dict(self.manifest, classes=list(self.head.classes))
        with _artifact(directory).write(manifest) as staging:
            arrays: dict[str, Any] = dict(self.head.to_arrays())
            np.savez(staging / "head.npz", **arrays)

    @classmethod
    def load_from(cls, directory: Path, embedder: Embedder) -> SentimentClassifier:
        """Load a saved model; refuse one trained on other data or another embedding model."""
        artifact = _artifact(directory)
        manifest = artifact.manifest()
        if manifest is None:
            raise NotTrainedError(f"{directory}: no sentiment model here; run `bot train`")
        stale = artifact.stale(_fingerprint(embedder.name), manifest)
        if stale:
            raise NotTrainedError(f"{directory}: sentiment model is out of date "
                                  f"({', '.join(stale)} changed); run `bot train`")
        try:
            with np.load(directory / "head.npz", allow_pickle=False) as data:
                head = LinearHead.from_arrays({k: data[k] for k in data.files},
                                              classes=manifest["classes"])
            return cls(head, embedder, manifest=manifest)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{directory}: sentiment model is damaged ({exc}); "
                             "run `bot train --force`") from exc


def _artifact(directory: Path) -> Artifact:
    return Artifact(directory, FORMAT_VERSION)


def _fingerprint(model: str) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "model": model, "data_sha256": file_digest(TRAINING_DATA),
            "c": LOGISTIC_C}


def train_sentiment(directory: Path, embedder: Embedder, *,
                    force: bool = False) -> tuple[SentimentClassifier, bool]:
    """Train (or reuse) the sentiment model in ``directory``; returns it and whether it was
    retrained."""
    if not force:
        try:
            return SentimentClassifier.load_from(directory, embedder), False
        except (NotTrainedError, ModelError):
            pass
    model = SentimentClassifier.train(embedder)
    model.save(directory)
    return model, True


@dataclass(frozen=True)
class Frustration:
    """A session's frustration: decayed negativity (0-1) and consecutive negative messages.

    ``level`` after a message is ``decay * level + (1 - decay) * P(negative)``; ``streak``
    counts negative messages in a row. Keep it in the session with :meth:`to_dict`.
    """

    level: float = 0.0
    streak: int = 0
    messages: int = 0

    def update(self, sentiment: SentimentPrediction, *, decay: float = 0.6) -> Frustration:
        """The state after one more user message."""
        level = decay * self.level + (1.0 - decay) * sentiment.negativity
        streak = self.streak + 1 if sentiment.label == "negative" else 0
        return Frustration(round(level, 6), streak, self.messages + 1)

    def frustrated(self, *, level: float = 0.5, streak: int = 3) -> bool:
        """Whether the user seems frustrated: level or streak at or above the limits."""
        return self.level >= level or self.streak >= streak

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Frustration:
        """Rebuild from :meth:`to_dict` output; anything missing or malformed starts fresh."""
        if not data:
            return cls()
        try:
            return cls(float(data.get("level", 0.0)), int(data.get("streak", 0)),
                       int(data.get("messages", 0)))
        except (TypeError, ValueError):
            return cls()
