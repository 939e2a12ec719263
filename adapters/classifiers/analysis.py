"""Train and load the message classifiers: intents, sentiment and entities, as one bundle.

``bot train`` calls :func:`train_classifiers`; the dialogue manager loads an :class:`Analyzer`
once and calls :meth:`Analyzer.analyze` per message (one embedding, shared by every model and
returned for FAQ retrieval; a second one when the intent classifier has its own tuned encoder).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.classifiers.entities import Entity, EntityExtractor
from adapters.classifiers.intents import (
    IntentClassifier,
    IntentPrediction,
    IntentSpec,
    train_intents,
)
from adapters.classifiers.sentiment import (
    Frustration,
    SentimentClassifier,
    SentimentPrediction,
    clean,
)
from adapters.classifiers.sentiment import train_sentiment as _train_sentiment
from adapters.settings import ClassifierFolders, ClassifierSettings, EntityDefinition
from retrieval.embedder import Embedder


def train_classifiers(folders: ClassifierFolders, intents: Sequence[IntentSpec],
                      settings: ClassifierSettings, embedder: Embedder, *, force: bool = False,
                      progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train what changed; returns ``{step: {"rebuilt", "seconds", "detail"}}``.

    Steps: ``"intent classifier"`` (only with intents) and ``"sentiment"``.
    """
    results: dict[str, dict[str, Any]] = {}
    if intents:
        started = time.perf_counter()
        model, rebuilt = train_intents(folders.intents, intents, settings, embedder,
                                       force=force, progress=progress)
        detail = (f"{len(model.intents)} intents, {model.manifest.get('examples', '?')} "
                  f"examples with out-of-scope, temperature {model.head.temperature:.2f}")
        if model.tuned:
            detail += f", own encoder tuned for {settings.encoder_steps} steps"
        results["intent classifier"] = {"rebuilt": rebuilt, "detail": detail,
                                        "seconds": time.perf_counter() - started}
    started = time.perf_counter()
    sentiment, rebuilt = _train_sentiment(folders.sentiment, embedder, force=force)
    results["sentiment"] = {"rebuilt": rebuilt, "seconds": time.perf_counter() - started,
                            "detail": f"{sentiment.manifest.get('examples', '?')} examples"}
    return results


@dataclass(frozen=True)
class Analysis:
    """Everything the classifiers say about one user message."""

    text: str
    vector: np.ndarray
    intent: IntentPrediction | None
    sentiment: SentimentPrediction
    frustration: Frustration
    entities: list[Entity] = field(default_factory=list)
    model: str = ""  # the embedding model ``vector`` came from ("" for none)


class Analyzer:
    """The loaded classifiers of one bot (construct with :meth:`load`)."""

    def __init__(self, embedder: Embedder, sentiment: SentimentClassifier,
                 entities: EntityExtractor, intents: IntentClassifier | None = None, *,
                 frustration_decay: float = 0.6) -> None:
        self.embedder = embedder
        self.intents = intents
        self.sentiment = sentiment
        self.entities = entities
        self.frustration_decay = frustration_decay

    @classmethod
    def load(cls, folders: ClassifierFolders, intents: Sequence[IntentSpec],
             settings: ClassifierSettings, entities: Sequence[EntityDefinition],
             embedder: Embedder) -> Analyzer:
        """Load what training built; raises ``NotTrainedError`` if missing or stale."""
        classifier = IntentClassifier.load(folders.intents, intents, settings, embedder) \
            if intents else None
        return cls(embedder, SentimentClassifier.load_from(folders.sentiment, embedder),
                   EntityExtractor(entities), classifier,
                   frustration_decay=settings.frustration_decay)

    def analyze(self, text: str, *, frustration: Frustration | None = None) -> Analysis:
        """Classify one message; ``frustration`` is the session's state before it."""
        cleaned = clean(text)
        vectors = self.embedder.embed([text] if cleaned == text else [text, cleaned])
        intent = None
        if self.intents is not None:  # a tuned intent encoder embeds the message once more
            intent_vectors = self.intents.embedder.embed([text]) if self.intents.tuned \
                else vectors[:1]
            intent = self.intents.predict_vectors(intent_vectors, [text])[0]
        sentiment = self.sentiment.predict_vectors(vectors[-1:])[0]
        state = (frustration or Frustration()).update(sentiment, decay=self.frustration_decay)
        return Analysis(text, vectors[0], intent, sentiment, state, self.entities.extract(text),
                        self.embedder.name)
