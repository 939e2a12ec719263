"""Intent classifier: logistic regression on sentence embeddings plus TF-IDF n-grams.

Features are the L2-normalised sentence embedding concatenated with word (1-2) and character
(2-5, inside word boundaries) TF-IDF vectors scaled by ``lexical_weight``. The softmax is
calibrated with one temperature fitted on out-of-fold predictions of the training examples.
A packaged background set of unrelated messages forms an ``out_of_scope`` class (merged with
the bot's own ``out_of_scope`` intent, if it defines one). Everything is saved as ``.npz`` arrays
and JSON, never pickle, in a build folder with a manifest fingerprinting the
examples, the settings and the embedding model. With ``classifier.encoder_steps`` the
classifier embeds with its own contrastively tuned copy of the encoder
(``adapters/training/encoder_tuning.py``), saved as safetensors in ``classifier/encoder``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adapters.classifiers.heads import LexicalFeatures, LinearHead, features_of
from adapters.errors import ModelError, NotTrainedError
from adapters.settings import ClassifierSettings
from adapters.training.encoder_tuning import tune_encoder
from retrieval.artifacts import Artifact, digest
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.errors import EmbedderError

FORMAT_VERSION = 1
OUT_OF_SCOPE = "out_of_scope"
ENCODER_DIR = "encoder"
RANKING_SIZE = 5
BACKGROUND_FILE = Path(__file__).parent / "data" / "out_of_scope.txt"


@dataclass(frozen=True)
class IntentPrediction:
    """The classifier's verdict on one message.

    ``ranking`` lists the best bot intents (never ``out_of_scope``) with calibrated
    probabilities. ``ambiguous``: the first two are closer than ``ambiguity_margin`` and
    together reach ``confidence_threshold`` (ask the user which one; ``intent`` is the first).
    ``out_of_scope``: the ``out_of_scope`` class won, or the confidence is below the threshold
    and the message is not ambiguous; ``intent`` is then None.
    """

    intent: str | None
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)
    out_of_scope: bool = False
    ambiguous: bool = False
    out_of_scope_probability: float = 0.0  # of the background class (0 without one)


class Classifier(Protocol):
    """Anything that maps a message to an :class:`IntentPrediction`."""

    def predict(self, text: str) -> IntentPrediction: ...


def background_examples() -> list[str]:
    """The packaged out-of-scope messages (comments and blank lines skipped)."""
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class IntentSpec(Protocol):
    """What the classifier learns of an intent (the bot's intent definitions fit)."""

    @property
    def name(self) -> str: ...

    @property
    def examples(self) -> Sequence[str]: ...

    @property
    def description(self) -> str: ...


def training_examples(intents: Sequence[IntentSpec]) -> list[tuple[str, str]]:
    """(text, intent) pairs: each intent's examples and its description, if any."""
    pairs: list[tuple[str, str]] = []
    for intent in intents:
        texts = [*intent.examples, *([intent.description] if intent.description else [])]
        pairs.extend((text, intent.name) for text in dict.fromkeys(texts))
    return pairs


def fingerprint(intents: Sequence[IntentSpec], settings: ClassifierSettings,
                model: str) -> dict[str, Any]:
    """What the trained classifier depends on; any change means it must be retrained."""
    content = {
        "intents": [[i.name, list(i.examples), i.description] for i in intents],
        "background": background_examples() if settings.builtin_out_of_scope else [],
        "training": _training_settings(settings),
    }
    return {"format": FORMAT_VERSION, "model": model, "examples_sha256": digest(content)}


def _training_settings(settings: ClassifierSettings) -> dict[str, Any]:
    return {"logistic_c": settings.logistic_c, "lexical_weight": settings.lexical_weight,
            "builtin_out_of_scope": settings.builtin_out_of_scope,
            "encoder_steps": settings.encoder_steps}


class IntentClassifier:
    """A trained intent model; predicts with the embedder it was trained with.

    ``tuned``: ``embedder`` is the classifier's own tuned encoder (saved with it), not the
    bot's shared one.
    """

    def __init__(self, head: LinearHead, lexical: LexicalFeatures | None, embedder: Embedder,
                 *, settings: ClassifierSettings | None = None,
                 manifest: dict[str, Any] | None = None, tuned: bool = False) -> None:
        self.head = head
        self.lexical = lexical
        self.embedder = embedder
        self.tuned = tuned
        self.settings = settings or ClassifierSettings()
        self.manifest = dict(manifest or {})
        self.intents = tuple(c for c in head.classes if c != OUT_OF_SCOPE)

    # -- training --------------------------------------------------------------------------

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], vectors: np.ndarray,
            embedder: Embedder, *, settings: ClassifierSettings | None = None,
            background: Sequence[str] = (), background_vectors: np.ndarray | None = None,
            calibrate: bool = True, seed: int = 0) -> IntentClassifier:
        """Train from texts, their labels and their embeddings (rows of ``vectors``)."""
        settings = settings or ClassifierSettings()
        texts, labels = list(texts), list(labels)
        weights = np.ones(len(texts), dtype=np.float64)
        if background:
            if background_vectors is None:
                background_vectors = embedder.embed(list(background))
            counts = Counter(label for label in labels if label != OUT_OF_SCOPE)
            typical = float(np.median(list(counts.values()))) if counts else 10.0
            share = min(1.0, 2.0 * typical / len(background))
            texts += list(background)
            labels += [OUT_OF_SCOPE] * len(background)
            vectors = np.vstack([vectors, background_vectors])
            weights = np.concatenate([weights, np.full(len(background), share)])
        if len(set(labels)) < 2:
            raise ModelError("an intent classifier needs at least two intents "
                             "(or one intent and the built-in out_of_scope examples)")
        lexical = None
        if settings.lexical_weight > 0:
            lexical = LexicalFeatures.fit(texts, weight=settings.lexical_weight)
        features = features_of(vectors, texts, lexical)
        in_scope = np.array([label != OUT_OF_SCOPE for label in labels])
        head = LinearHead.fit(features, labels, c=settings.logistic_c, sample_weight=weights,
                              calibrate=calibrate, calibration_rows=in_scope, seed=seed)
        manifest = {"model": embedder.name, "dimensions": int(vectors.shape[1]),
                    "examples": len(texts), "temperature": head.temperature}
        return cls(head, lexical, embedder, settings=settings, manifest=manifest)

    @classmethod
    def train(cls, intents: Sequence[IntentSpec], settings: ClassifierSettings,
              embedder: Embedder, *, progress: bool = False) -> IntentClassifier:
        """Train on intent definitions (tuning an encoder first if configured)."""
        pairs = training_examples(intents)
        texts, labels = [t for t, _ in pairs], [label for _, label in pairs]
        background = background_examples() if settings.builtin_out_of_scope else []
        base_name = embedder.name
        if settings.encoder_steps:
            embedder = tuned_encoder(embedder, texts, labels, steps=settings.encoder_steps,
                                     progress=progress)
        vectors = embedder.embed(texts + background, progress=progress)
        model = cls.fit(texts, labels, vectors[: len(texts)], embedder, settings=settings,
                        background=background, background_vectors=vectors[len(texts):])
        model.tuned = bool(settings.encoder_steps)
        model.manifest.update(fingerprint(intents, settings, base_name))
        model.manifest["intents"] = list(model.intents)
        return model

    # -- prediction ------------------------------------------------------------------------

    def predict(self, text: str) -> IntentPrediction:
        """Classify one message."""
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify a batch of messages (one embedder call)."""
        return self.predict_vectors(self.embedder.embed(list(texts)), texts)

    def predict_vectors(self, vectors: np.ndarray, texts: Sequence[str]) -> list[IntentPrediction]:
        """Classify messages whose embeddings (same embedder) were computed already."""
        probabilities = self.head.probabilities(features_of(vectors, list(texts), self.lexical))
        return [self._verdict(row) for row in probabilities]

    def _verdict(self, row: np.ndarray) -> IntentPrediction:
        classes = self.head.classes
        order = [i for i in np.argsort(-row) if classes[i] != OUT_OF_SCOPE]
        ranking = [(classes[i], float(row[i])) for i in order[:RANKING_SIZE]]
        top_is_background = classes[int(np.argmax(row))] == OUT_OF_SCOPE
        confidence = ranking[0][1] if ranking else 0.0
        runner_up = ranking[1][1] if len(ranking) > 1 else 0.0
        threshold, margin = self.settings.confidence_threshold, self.settings.ambiguity_margin
        ambiguous = (not top_is_background and confidence - runner_up < margin
                     and confidence + runner_up >= threshold)
        out_of_scope = top_is_background or (confidence < threshold and not ambiguous)
        background = float(row[classes.index(OUT_OF_SCOPE)]) if OUT_OF_SCOPE in classes else 0.0
        return IntentPrediction(None if out_of_scope else ranking[0][0], confidence, ranking,
                                out_of_scope, ambiguous, background)

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write arrays (.npz), vocabularies and manifest (JSON) atomically."""
        manifest = dict(self.manifest, classes=list(self.head.classes),
                        lexical_weight=self.lexical.weight if self.lexical else 0.0,
                        tuned_encoder=self.tuned)
        with _artifact(directory).write(manifest) as staging:
            arrays: dict[str, Any] = dict(self.head.to_arrays())
            if self.lexical is not None:
                arrays.update(self.lexical.to_arrays())
                (staging / "vocabulary.json").write_text(
                    json.dumps(self.lexical.vocabularies(), ensure_ascii=False))
            np.savez(staging / "head.npz", **arrays)
            if self.tuned:
                assert isinstance(self.embedder, SentenceEmbedder)
                self.embedder.save(staging / ENCODER_DIR)

    @classmethod
    def load_from(cls, directory: Path, embedder: Embedder, *,
                  settings: ClassifierSettings | None = None) -> IntentClassifier:
        """Load a saved classifier without checking it against a bot definition.

        ``embedder`` is the bot's shared encoder: the one the classifier was trained with, or
        the base of its tuned copy, which is loaded from ``directory``.
        """
        manifest = _artifact(directory).manifest()
        if manifest is None:
            raise NotTrainedError(f"{directory}: no intent classifier here; run `bot train`")
        if manifest.get("model") != embedder.name:
            raise NotTrainedError(
                f"{directory}: classifier was trained with embedding model "
                f"{manifest.get('model')!r}, not {embedder.name!r}; run `bot train`")
        try:
            with np.load(directory / "head.npz", allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            head = LinearHead.from_arrays(arrays, classes=manifest["classes"])
            lexical = None
            if float(manifest.get("lexical_weight", 0.0)) > 0:
                vocabularies = json.loads((directory / "vocabulary.json").read_text())
                lexical = LexicalFeatures.from_arrays(arrays, vocabularies,
                                                      weight=float(manifest["lexical_weight"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{directory}: intent classifier is damaged ({exc}); "
                             "run `bot train --force`") from exc
        expected = int(manifest.get("dimensions", 0)) + (lexical.size if lexical else 0)
        if head.coef.shape != (len(head.classes), expected):
            raise ModelError(f"{directory}: intent classifier files disagree; "
                             "run `bot train --force`")
        tuned = bool(manifest.get("tuned_encoder"))
        if tuned:
            embedder = _load_tuned_encoder(directory / ENCODER_DIR, embedder)
        return cls(head, lexical, embedder, settings=settings, manifest=manifest, tuned=tuned)

    @classmethod
    def load(cls, directory: Path, intents: Sequence[IntentSpec], settings: ClassifierSettings,
             embedder: Embedder) -> IntentClassifier:
        """Load a classifier; refuse one trained on other examples or settings."""
        model = cls.load_from(directory, embedder, settings=settings)
        wanted = fingerprint(intents, settings, embedder.name)
        if model.manifest.get("examples_sha256") != wanted["examples_sha256"]:
            raise NotTrainedError(f"{directory}: intent classifier is out of date (intent "
                                  "examples or classifier settings changed); run `bot train`")
        return model


def tuned_encoder(base: Embedder, texts: Sequence[str], labels: Sequence[str], *, steps: int,
                  seed: int = 0, progress: bool = False) -> SentenceEmbedder:
    """A fresh copy of ``base``'s model, contrastively tuned on the labelled examples."""
    in_scope = [(t, label) for t, label in zip(texts, labels, strict=True)
                if label != OUT_OF_SCOPE]
    copy = base.fresh() if isinstance(base, SentenceEmbedder) else \
        SentenceEmbedder(base.name, device=getattr(base, "device", "cpu"))
    tune_encoder(copy.model, [t for t, _ in in_scope], [label for _, label in in_scope],
                 steps=steps, seed=seed, progress=progress)
    return copy


def _load_tuned_encoder(folder: Path, base: Embedder) -> SentenceEmbedder:
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: the intent classifier's tuned encoder is missing; "
                         "run `bot train --force`")
    try:
        return SentenceEmbedder(str(folder), device=getattr(base, "device", "cpu")).load()
    except EmbedderError as exc:
        raise ModelError(f"{folder}: the intent classifier's tuned encoder is damaged ({exc}); "
                         "run `bot train --force`") from exc


def _artifact(directory: Path) -> Artifact:
    return Artifact(directory, FORMAT_VERSION)


def train_intents(directory: Path, intents: Sequence[IntentSpec], settings: ClassifierSettings,
                  embedder: Embedder, *, force: bool = False,
                  progress: bool = False) -> tuple[IntentClassifier, bool]:
    """Train (or reuse) the classifier in ``directory``; returns it and whether it was
    retrained."""
    if not force and _artifact(directory).is_current(fingerprint(intents, settings,
                                                                 embedder.name)):
        try:
            return IntentClassifier.load(directory, intents, settings, embedder), False
        except (NotTrainedError, ModelError):
            pass  # damaged: retrain below
    model = IntentClassifier.train(intents, settings, embedder, progress=progress)
    model.save(directory)
    return model, True
