"""The answer decision: answer, ask which of two was meant, or say so and offer a person.

Every candidate answer of a turn (the retrieved FAQ passages, intents with a canned response;
``adapters/answering/evidence.py``) gets a probability of being the right answer from a small
logistic model per kind, learned per bot at ``bot train`` from the bot's own data
(``adapters/answering/policy_data.py``). The best candidate is answered when its probability
reaches the policy's ``threshold``: the lowest probability at which, on held-out folds of that
data, at most ``max_wrong_rate`` of all the questions were answered wrongly, with a margin for
chance (``choose_threshold``). Below it, two different candidates that together reach it
are offered as "Do you mean A or B?"; otherwise the bot abstains. Saved as JSON
(coefficients, scaling, vocabulary, links) with a manifest.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from adapters.answering.evidence import FAQ_FEATURES, INTENT_FEATURES, Candidate, EvidenceBuilder
from adapters.classifiers.intents import IntentPrediction
from adapters.errors import ModelError, NotTrainedError
from retrieval.artifacts import Artifact
from retrieval.index import Hit

FORMAT_VERSION = 1
POLICY_FILE = "policy.json"
FOLDS = 5
CONFIDENCE_Z = 1.645  # one-sided 95 %: answer only where the wrong share is surely in bounds
FEATURES = {"faq": FAQ_FEATURES, "intent": INTENT_FEATURES}


@dataclass(frozen=True)
class Decision:
    """What to do with a turn: ``action`` "answer" (``best``), "clarify" (``options``) or
    "abstain"; ``candidates`` best first, with their probabilities."""

    action: str
    candidates: tuple[Candidate, ...]
    threshold: float

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def options(self) -> tuple[Candidate, ...]:
        return self.candidates[:2] if self.action == "clarify" else ()

    def evidence(self) -> dict[str, Any]:
        """The decision and what it rested on (for the reply's metadata and the event log)."""
        return {"action": self.action, "threshold": round(self.threshold, 4),
                "candidates": [{"kind": c.kind, "target": c.target,
                                "probability": round(c.probability, 4),
                                "features": c.named()} for c in self.candidates[:3]]}


@dataclass(frozen=True)
class Example:
    """One training question: its candidates and which of them are right (none, for a
    question the bot cannot answer); ``weight`` of the question in fitting."""

    candidates: tuple[Candidate, ...]
    right: frozenset[str]  # "kind:target" of the right candidates
    weight: float = 1.0

    def is_right(self, candidate: Candidate) -> bool:
        return f"{candidate.kind}:{candidate.target}" in self.right


@dataclass
class LogisticScorer:
    """P(right) for one kind of candidate: standardised features, logistic weights."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> LogisticScorer:
        mean = features.mean(axis=0)
        scale = features.std(axis=0) + 1e-6
        if len(set(labels.tolist())) < 2:  # all right or all wrong: a constant
            rate = float(np.average(labels, weights=weights)) if len(labels) else 0.0
            logit = float(np.log((rate + 1e-3) / (1 - rate + 1e-3)))
            return cls(mean, scale, np.zeros(features.shape[1]), logit)
        model = LogisticRegression(C=1.0, max_iter=2000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit((features - mean) / scale, labels, sample_weight=weights)
        return cls(mean, scale, model.coef_[0], float(model.intercept_[0]))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogisticScorer:
        return cls(np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]))


@dataclass
class AnswerPolicy:
    """A bot's learned answer decision (train with :meth:`fit`, or :meth:`load`)."""

    scorers: dict[str, LogisticScorer]
    threshold: float
    evidence: EvidenceBuilder
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        """False when the bot's data was too little to learn from (the bot then answers by
        ``faq.answer_threshold``)."""
        return bool(self.scorers)

    # -- deciding --------------------------------------------------------------------------

    def weigh(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        """The candidates with their probabilities, best first."""
        return _weigh(self.scorers, candidates)

    def decide(self, text: str, hits: Sequence[Hit], intent: IntentPrediction | None,
               answerable: Iterable[str] = ()) -> Decision:
        """Answer, clarify or abstain for a message with these hits and intent verdict."""
        ranked = self.weigh(self.evidence.candidates(text, hits, intent, answerable))
        return Decision(choose(ranked, self.threshold, self.evidence.links), tuple(ranked),
                        self.threshold)

    # -- training --------------------------------------------------------------------------

    @classmethod
    def fit(cls, examples: Sequence[Example], evidence: EvidenceBuilder, *,
            max_wrong_rate: float, seed: int = 0) -> AnswerPolicy:
        """Fit the scorers on ``examples`` and set the threshold from out-of-fold
        probabilities so that at most ``max_wrong_rate`` of the questions are answered
        wrongly."""
        if not examples:
            raise ModelError("no examples to learn the answer policy from")
        groups = np.arange(len(examples))
        folds = min(FOLDS, len(examples))
        held_out: list[list[Candidate]] = [[] for _ in examples]
        if folds >= 2:
            splitter = GroupKFold(n_splits=folds)
            for train, test in splitter.split(groups, groups=groups):
                scorers = _fit_scorers([examples[i] for i in train])
                for i in test:
                    held_out[i] = _weigh(scorers, examples[i].candidates)
        outcomes = [(ranked[0].probability if ranked else 0.0,
                     bool(ranked) and examples[i].is_right(ranked[0]), examples[i].weight)
                    for i, ranked in enumerate(held_out)]
        threshold = choose_threshold(outcomes, max_wrong_rate)
        total = sum(w for _, _, w in outcomes) or 1.0
        answered = [(right, w) for p, right, w in outcomes if p >= threshold]
        manifest = {"examples": len(examples), "max_wrong_rate": max_wrong_rate,
                    "threshold": threshold,
                    "held_out": {"answered": round(sum(w for _, w in answered) / total, 4),
                                 "right": round(sum(w for r, w in answered if r) / total, 4),
                                 "wrong": round(sum(w for r, w in answered if not r) / total,
                                                4)}}
        return cls(_fit_scorers(examples), threshold, evidence, manifest)

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path, fingerprint: Mapping[str, Any]) -> None:
        body = {"threshold": self.threshold,
                "scorers": {k: s.to_json() for k, s in self.scorers.items()},
                "known": dict(sorted(self.evidence.known.items())),
                "intent_words": {k: dict(v) for k, v in self.evidence.intent_words.items()},
                "links": dict(self.evidence.links)}
        with policy_artifact(directory).write(dict(self.manifest, **fingerprint)) as staging:
            (staging / POLICY_FILE).write_text(json.dumps(body, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path, fingerprint: Mapping[str, Any] | None = None) -> AnswerPolicy:
        """Load a saved policy; refuse a missing, damaged or (``fingerprint``) stale one."""
        artifact = policy_artifact(directory)
        manifest = artifact.manifest()
        if manifest is None:
            raise NotTrainedError(f"{directory}: no answer policy here; run `bot train`")
        if fingerprint is not None and artifact.stale(fingerprint, manifest):
            raise NotTrainedError(f"{directory}: the answer policy is out of date (FAQ, "
                                  "intents or answers settings changed); run `bot train`")
        path = directory / POLICY_FILE
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            scorers = {k: LogisticScorer.from_json(v) for k, v in body["scorers"].items()}
            for kind, scorer in scorers.items():
                if len(scorer.coef) != len(FEATURES[kind]):
                    raise ValueError(f"{kind} scorer has {len(scorer.coef)} weights")
            evidence = EvidenceBuilder(Counter(body["known"]),
                                       {k: Counter(v) for k, v in body["intent_words"].items()},
                                       dict(body["links"]))
            return cls(scorers, float(body["threshold"]), evidence, manifest)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: answer policy is damaged ({exc}); run `bot train "
                             "--force`") from exc


def policy_artifact(directory: Path) -> Artifact:
    return Artifact(directory, FORMAT_VERSION, required=(POLICY_FILE,))


def choose(ranked: Sequence[Candidate], threshold: float,
           links: Mapping[str, str] | None = None) -> str:
    """"answer" when the best reaches the threshold; "clarify" when the best two are
    different answers and together reach it, the second at least half as likely as the
    first; else "abstain". ``links``: intent -> the passage its response states (the two
    are one answer)."""
    if not ranked:
        return "abstain"
    first = ranked[0]
    if first.probability >= threshold:
        return "answer"
    if len(ranked) > 1:
        second = ranked[1]
        if answer_of(first, links) != answer_of(second, links) \
                and second.probability >= first.probability / 2 \
                and first.probability + second.probability >= threshold:
            return "clarify"
    return "abstain"


def answer_of(candidate: Candidate, links: Mapping[str, str] | None = None) -> str:
    """What a candidate answers with: its passage, or an intent's linked passage."""
    if candidate.kind == "intent" and links and candidate.target in links:
        return f"faq:{links[candidate.target]}"
    return f"{candidate.kind}:{candidate.target}"


def choose_threshold(outcomes: Sequence[tuple[float, bool, float]], max_wrong_rate: float,
                     z: float = CONFIDENCE_Z) -> float:
    """The lowest probability from which answering (``outcomes``: probability, right,
    weight) answers at most ``max_wrong_rate`` of all the questions wrongly (weighted), with
    one-sided confidence ``z`` (the wrong share plus ``z`` standard errors, over the
    effective number of questions; 0: the observed share)."""
    total = sum(weight for _, _, weight in outcomes)
    if total <= 0:
        return 0.99
    questions = total ** 2 / sum(weight ** 2 for _, _, weight in outcomes)  # effective n
    wrong = 0.0
    threshold = 1.0
    for probability, right, weight in sorted(outcomes, key=lambda o: -o[0]):
        wrong += 0.0 if right else weight
        if upper_share(wrong / total, questions, z) > max_wrong_rate:
            break
        threshold = probability
    return float(min(max(threshold, 0.05), 0.99))


def upper_share(share: float, n: float, z: float) -> float:
    """A share observed on ``n`` questions plus ``z`` standard errors: the margin chance
    leaves (none while nothing was wrong, so a small bot still answers what it is sure of)."""
    return share + z * math.sqrt(share * (1 - share) / n)


def _fit_scorers(examples: Sequence[Example]) -> dict[str, LogisticScorer]:
    scorers = {}
    for kind in FEATURES:
        rows, labels, weights = [], [], []
        for example in examples:
            for candidate in example.candidates:
                if candidate.kind == kind:
                    rows.append(candidate.features)
                    labels.append(1 if example.is_right(candidate) else 0)
                    weights.append(example.weight)
        if rows:
            scorers[kind] = LogisticScorer.fit(np.asarray(rows, float), np.asarray(labels),
                                               np.asarray(weights, float))
    return scorers


def _weigh(scorers: Mapping[str, LogisticScorer],
           candidates: Iterable[Candidate]) -> list[Candidate]:
    """``candidates`` of the kinds ``scorers`` know, with their probabilities, best first."""
    weighed = [replace(c, probability=float(scorers[c.kind].probabilities(
        np.asarray([c.features]))[0])) for c in candidates if c.kind in scorers]
    return sorted(weighed, key=lambda c: -c.probability)
