"""Intent evaluation: accuracy, macro-F1, per-intent report, confusion matrix, out-of-scope.

Rows labelled ``out_of_scope`` (or left unlabelled) are expected to be rejected; a
prediction counts as ``out_of_scope`` when the classifier says so. Macro-F1 averages over
the in-scope intents of the gold labels. :func:`cross_validate` runs stratified k-fold on the
bot's own examples (descriptions and the built-in out-of-scope set stay in every training part;
with ``classifier.encoder_steps`` each fold tunes its own encoder on its training part).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from adapters.classifiers.intents import (
    OUT_OF_SCOPE,
    IntentClassifier,
    IntentPrediction,
    background_examples,
    tuned_encoder,
)
from bot.definition.config import BotDefinition
from bot.errors import BotError, ConfigError
from bot.insights.svg import confusion_chart
from retrieval.embedder import Embedder

LABEL_COLUMNS = ("intent", "label", "category")
MAX_ERRORS = 20


@dataclass(frozen=True)
class Scores:
    """Precision, recall, F1 and the number of gold examples of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Mistake:
    text: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class IntentReport:
    """The result of evaluating an intent classifier on labelled messages."""

    examples: int
    accuracy: float
    macro_f1: float
    per_intent: dict[str, Scores]
    labels: list[str]
    confusion: list[list[int]]
    out_of_scope: Scores | None = None
    ambiguous_rate: float = 0.0
    unknown_intents: list[str] = field(default_factory=list)
    mistakes: list[Mistake] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, *, title: str = "Intent evaluation") -> str:
        """A plain-text report for the terminal."""
        lines = [f"{title}: {self.examples} messages",
                 f"  accuracy  {self.accuracy:.2%}", f"  macro-F1  {self.macro_f1:.2%}",
                 f"  ambiguous {self.ambiguous_rate:.2%}"]
        if self.out_of_scope is not None:
            oos = self.out_of_scope
            lines.append(f"  out-of-scope precision {oos.precision:.2%}  recall {oos.recall:.2%}"
                         f"  (F1 {oos.f1:.2%}, {oos.support} messages)")
        if self.unknown_intents:
            lines.append("  intents not in the bot (never predicted): "
                         + ", ".join(self.unknown_intents))
        width = max([len(name) for name in self.per_intent] + [6])
        lines.append(f"\n  {'intent':<{width}}  precision  recall     F1  support")
        for name, s in sorted(self.per_intent.items(), key=lambda item: item[1].f1):
            lines.append(f"  {name:<{width}}  {s.precision:9.2%}  {s.recall:6.2%}  {s.f1:5.2%}"
                         f"  {s.support:7d}")
        if self.mistakes:
            lines.append("\n  some mistakes (expected -> predicted, confidence):")
            lines += [f"    {m.expected} -> {m.predicted} ({m.confidence:.2f}): {m.text}"
                      for m in self.mistakes]
        return "\n".join(lines)


def read_labelled_csv(path: Path) -> list[tuple[str, str]]:
    """(text, intent) rows of a CSV with a ``text`` column and ``intent``/``label``/``category``.

    An empty label means ``out_of_scope``.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            label = next((c for c in LABEL_COLUMNS if c in columns), None)
            if "text" not in columns or label is None:
                raise ConfigError("needs a 'text' column and one of "
                                  + ", ".join(repr(c) for c in LABEL_COLUMNS), file=str(path))
            rows = [((row["text"] or "").strip(), (row[label] or "").strip() or OUT_OF_SCOPE)
                    for row in reader]
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read CSV: {exc}", file=str(path)) from exc
    rows = [(text, intent) for text, intent in rows if text]
    if not rows:
        raise ConfigError("no labelled messages", file=str(path))
    return rows


def predicted_label(prediction: IntentPrediction) -> str:
    return OUT_OF_SCOPE if prediction.out_of_scope or prediction.intent is None \
        else prediction.intent


def score(texts: Sequence[str], expected: Sequence[str],
          predictions: Sequence[IntentPrediction], *,
          known_intents: Sequence[str] = ()) -> IntentReport:
    """Compare predictions with gold labels."""
    predicted = [predicted_label(p) for p in predictions]
    gold_intents = sorted({e for e in expected if e != OUT_OF_SCOPE})
    labels = sorted(set(gold_intents) | {p for p in predicted if p != OUT_OF_SCOPE})
    labels.append(OUT_OF_SCOPE)
    position = {name: i for i, name in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for gold, guess in zip(expected, predicted, strict=True):
        confusion[position[gold], position[guess]] += 1
    per_intent = {name: _scores(confusion, position[name]) for name in gold_intents}
    oos = _scores(confusion, position[OUT_OF_SCOPE]) if OUT_OF_SCOPE in expected else None
    mistakes = [Mistake(t, e, p, round(pred.confidence, 4))
                for t, e, p, pred in zip(texts, expected, predicted, predictions, strict=True)
                if e != p][:MAX_ERRORS]
    unknown = sorted(set(gold_intents) - set(known_intents)) if known_intents else []
    return IntentReport(
        examples=len(expected),
        accuracy=float(np.trace(confusion) / max(1, confusion.sum())),
        macro_f1=float(np.mean([s.f1 for s in per_intent.values()])) if per_intent else 0.0,
        per_intent=per_intent, labels=labels, confusion=confusion.tolist(), out_of_scope=oos,
        ambiguous_rate=float(np.mean([p.ambiguous for p in predictions])) if predictions else 0.0,
        unknown_intents=unknown, mistakes=mistakes)


def _scores(confusion: np.ndarray, i: int) -> Scores:
    true_positive = float(confusion[i, i])
    predicted = float(confusion[:, i].sum())
    support = int(confusion[i, :].sum())
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), support)


def evaluate_intents(classifier: IntentClassifier, rows: Sequence[tuple[str, str]]) -> IntentReport:
    """Evaluate a trained classifier on (text, intent) rows."""
    texts = [text for text, _ in rows]
    predictions = classifier.predict_many(texts)
    return score(texts, [label for _, label in rows], predictions,
                 known_intents=classifier.intents)


def cross_validate(bot: BotDefinition, embedder: Embedder, *, folds: int = 5, seed: int = 0,
                   progress: bool = False) -> IntentReport:
    """Stratified k-fold over the bot's intent examples, predicting each held-out part.

    ``progress``: show a bar while each fold tunes its encoder (``classifier.encoder_steps``).
    """
    if folds < 2:
        raise BotError("cross-validation needs at least 2 folds")
    pairs = [(text, i.name) for i in bot.config.intents for text in dict.fromkeys(i.examples)]
    extra = [(i.description, i.name) for i in bot.config.intents if i.description]
    settings = bot.config.classifier
    background = background_examples() if settings.builtin_out_of_scope else []
    if len({label for _, label in pairs}) < 2:
        raise BotError("cross-validation needs at least two intents")
    everything = [text for text, _ in pairs + extra] + background
    stock_vectors = embedder.embed(everything)
    labels = np.array([label for _, label in pairs])
    predictions: list[IntentPrediction | None] = [None] * len(pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # intents with fewer examples than folds
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
            np.zeros(len(labels)), labels)
        for train, held in splits:
            texts = [pairs[i][0] for i in train] + [text for text, _ in extra]
            fold_labels = [str(labels[i]) for i in train] + [label for _, label in extra]
            encoder, vectors = embedder, stock_vectors
            if settings.encoder_steps:  # tuned on this fold's examples only, as `bot train`
                encoder = tuned_encoder(embedder, texts, fold_labels,
                                        steps=settings.encoder_steps, seed=seed,
                                        progress=progress)
                vectors = encoder.embed(everything)
            pair_vectors = vectors[: len(pairs)]
            model = IntentClassifier.fit(
                texts, fold_labels,
                np.vstack([pair_vectors[train], vectors[len(pairs): len(pairs) + len(extra)]]),
                encoder, settings=settings, background=background,
                background_vectors=vectors[len(pairs) + len(extra):], seed=seed)
            held_predictions = model.predict_vectors(pair_vectors[held],
                                                     [pairs[i][0] for i in held])
            for i, prediction in zip(held, held_predictions, strict=True):
                predictions[i] = prediction
    done = [p for p in predictions if p is not None]
    return score([text for text, _ in pairs], list(labels), done)


def plot_confusion(report: IntentReport, path: Path, *, title: str = "Intent confusion") -> Path:
    """Save the confusion matrix (rows: expected, columns: predicted) as a PNG, and as an
    SVG beside it."""
    from matplotlib.figure import Figure

    matrix = np.array(report.confusion, dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = min(40.0, max(6.0, 0.28 * len(report.labels) + 3))
    figure = Figure(figsize=(size, size))
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(report.labels))
    font = 8 if len(report.labels) <= 30 else 5
    axes.set_xticks(ticks, report.labels, rotation=90, fontsize=font)
    axes.set_yticks(ticks, report.labels, fontsize=font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    axes.set_title(f"{title} (accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.1%})")
    if len(report.labels) <= 20:
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                axes.text(column, row, str(int(count)), ha="center", va="center", fontsize=7,
                          color="white" if shares[row, column] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of expected")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    heading = f"{title} (accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.1%})"
    path.with_suffix(".svg").write_text(confusion_chart(report.labels, report.confusion,
                                                        title=heading), encoding="utf-8")
    return path
