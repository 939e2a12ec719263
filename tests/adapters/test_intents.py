"""The intent classifier with the real MiniLM embedder on a small bot."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adapters.classifiers.heads import fit_temperature
from adapters.classifiers.intents import (
    OUT_OF_SCOPE,
    IntentClassifier,
)
from bot.build import train_classifiers, train_intents
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.errors import ModelError, NotTrainedError
from bot.runtime import load_analyzer, load_intents
from retrieval.embedder import SentenceEmbedder

INTENTS_YAML = """
name: bank
intents:
  - name: check_balance
    examples: ["what's my balance", "how much money do I have", "show my account balance",
               "balance please", "how much is left in my account", "what's in my current account"]
  - name: lost_card
    examples: ["I lost my card", "my card was stolen", "I can't find my credit card",
               "someone took my card", "block my card, it's gone", "my debit card is missing"]
  - name: opening_hours
    examples: ["when are you open", "what are your opening hours", "are you open on sunday",
               "what time do you close", "branch hours", "until when is the branch open"]
  - name: transfer_money
    examples: ["send money to my friend", "make a transfer", "transfer 50 pounds to John",
               "how do I pay someone", "move money to my savings", "wire money abroad"]
"""


def write_bot(root: Path, yaml_text: str = INTENTS_YAML) -> BotDefinition:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(textwrap.dedent(yaml_text))
    return load_bot(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory,
            embedder: SentenceEmbedder) -> tuple[BotDefinition, IntentClassifier]:
    bot = write_bot(tmp_path_factory.mktemp("intents") / "bank")
    model, rebuilt = train_intents(bot, embedder)
    assert rebuilt
    return bot, model


@pytest.mark.parametrize(("text", "intent"), [
    ("how much cash is there in my account?", "check_balance"),
    ("my wallet was stolen with my visa card inside", "lost_card"),
    ("are you open tomorrow morning?", "opening_hours"),
    ("I need to pay my landlord 300 euros", "transfer_money"),
])
def test_held_out_paraphrases_are_classified(trained: tuple[BotDefinition, IntentClassifier],
                                             text: str, intent: str) -> None:
    prediction = trained[1].predict(text)
    assert prediction.intent == intent
    assert not prediction.out_of_scope
    assert prediction.confidence >= 0.5
    assert prediction.ranking[0] == (intent, prediction.confidence)


@pytest.mark.parametrize("text", ["what's the weather like in Paris tomorrow?",
                                  "write me a poem about autumn leaves",
                                  "who won the football match yesterday"])
def test_out_of_scope_text_gets_low_confidence(trained: tuple[BotDefinition, IntentClassifier],
                                               text: str) -> None:
    prediction = trained[1].predict(text)
    assert prediction.out_of_scope
    assert prediction.intent is None
    assert prediction.confidence < 0.3
    assert all(name != OUT_OF_SCOPE for name, _ in prediction.ranking)


def test_ranking_is_sorted_probabilities(trained: tuple[BotDefinition, IntentClassifier]) -> None:
    ranking = trained[1].predict("card balance").ranking
    scores = [score for _, score in ranking]
    assert scores == sorted(scores, reverse=True)
    assert len(ranking) == 4 and sum(scores) <= 1.0 + 1e-6


def test_ambiguity_and_threshold_rules(trained: tuple[BotDefinition, IntentClassifier]) -> None:
    model = trained[1]
    classes = model.head.classes
    row = np.zeros(len(classes))
    row[classes.index("lost_card")], row[classes.index("check_balance")] = 0.46, 0.44
    row[classes.index(OUT_OF_SCOPE)] = 0.10
    verdict = model._verdict(row)
    assert verdict.ambiguous and not verdict.out_of_scope and verdict.intent == "lost_card"
    row[classes.index("check_balance")] = 0.20
    row[classes.index("transfer_money")] = 0.24
    verdict = model._verdict(row)  # 0.46 < 0.5 and not ambiguous: rejected
    assert verdict.out_of_scope and verdict.intent is None and not verdict.ambiguous
    row[:] = 0.0
    row[classes.index(OUT_OF_SCOPE)], row[classes.index("lost_card")] = 0.55, 0.45
    verdict = model._verdict(row)
    assert verdict.out_of_scope and verdict.confidence == pytest.approx(0.45)


def test_training_is_skipped_when_unchanged_and_reload_predicts_the_same(
        trained: tuple[BotDefinition, IntentClassifier], embedder: SentenceEmbedder) -> None:
    bot, model = trained
    again, rebuilt = train_intents(bot, embedder)
    assert not rebuilt
    text = "I misplaced my card somewhere"
    before, after = model.predict(text).ranking, again.predict(text).ranking
    assert [name for name, _ in after] == [name for name, _ in before]
    assert [p for _, p in after] == pytest.approx([p for _, p in before], abs=1e-5)
    saved = bot.classifier_dirs.intents
    assert {p.name for p in saved.iterdir()} == {"manifest.json", "head.npz", "vocabulary.json"}
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["intents"] == ["check_balance", "lost_card", "opening_hours",
                                   "transfer_money"]
    with np.load(saved / "head.npz", allow_pickle=False) as arrays:  # plain arrays only
        assert arrays["coef"].shape[0] == 5


def test_changed_examples_make_the_saved_model_stale(tmp_path: Path,
                                                     embedder: SentenceEmbedder) -> None:
    bot = write_bot(tmp_path / "bank")
    with pytest.raises(NotTrainedError, match="run `bot train`"):
        load_intents(bot, embedder)
    train_intents(bot, embedder)
    changed = write_bot(tmp_path / "bank", INTENTS_YAML.replace("balance please", "balance pls"))
    with pytest.raises(NotTrainedError, match="out of date"):
        load_intents(changed, embedder)
    with pytest.raises(NotTrainedError, match="embedding model"):
        load_intents(bot, SentenceEmbedder("some/other-model"))
    _, rebuilt = train_intents(changed, embedder)
    assert rebuilt
    load_intents(changed, embedder)


def test_damaged_model_gives_model_error(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    bot = write_bot(tmp_path / "bank")
    train_intents(bot, embedder)
    (bot.classifier_dirs.intents / "head.npz").write_bytes(b"not an npz file")
    with pytest.raises(ModelError, match="damaged"):
        load_intents(bot, embedder)
    _, rebuilt = train_intents(bot, embedder)  # a damaged model is rebuilt, not reused
    assert rebuilt


def test_explicit_out_of_scope_intent_adds_examples(tmp_path: Path,
                                                    embedder: SentenceEmbedder) -> None:
    yaml_text = INTENTS_YAML + """
  - name: out_of_scope
    examples: ["can I get a mortgage", "do you sell home insurance", "I want a car loan",
               "what are your mortgage rates", "apply for a loan"]
"""
    bot = write_bot(tmp_path / "bank", yaml_text)
    model, _ = train_intents(bot, embedder)
    assert OUT_OF_SCOPE not in model.intents
    prediction = model.predict("how do I apply for a mortgage with you?")
    assert prediction.out_of_scope and prediction.intent is None
    assert model.predict("what's my balance today").intent == "check_balance"


def test_without_builtin_background_the_model_has_only_bot_intents(
        tmp_path: Path, embedder: SentenceEmbedder) -> None:
    bot = write_bot(tmp_path / "bank", INTENTS_YAML + "classifier:\n  builtin_out_of_scope: false\n"
                    "  lexical_weight: 0\n")
    model, _ = train_intents(bot, embedder)
    assert model.head.classes == model.intents
    assert model.lexical is None
    assert model.predict("show me my balance").intent == "check_balance"


def test_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 5))
    scaled = logits / 2.0
    probabilities = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(5, p=p) for p in probabilities])
    assert fit_temperature(logits, targets) == pytest.approx(2.0, rel=0.1)


def test_train_classifiers_and_analyzer(trained: tuple[BotDefinition, IntentClassifier],
                                        embedder: SentenceEmbedder) -> None:
    bot = trained[0]
    steps = train_classifiers(bot, embedder, progress=False)
    assert set(steps) == {"intent classifier", "sentiment"}
    assert steps["intent classifier"]["rebuilt"] is False
    analyzer = load_analyzer(bot, embedder)
    first = analyzer.analyze("This is ridiculous, my card was stolen and nobody answers!")
    assert first.intent is not None and first.intent.intent == "lost_card"
    assert first.sentiment.label == "negative"
    assert first.frustration.streak == 1
    assert first.vector.shape == (embedder.dimensions,)
    second = analyzer.analyze("send £20 to my sister please", frustration=first.frustration)
    assert second.frustration.streak == 0
    assert second.frustration.level < first.frustration.level
    assert [(e.name, e.value) for e in second.entities] == [("amount", "20 GBP")]
    assert second.intent is not None and second.intent.intent == "transfer_money"


def test_settings_thresholds_apply_without_retraining(
        trained: tuple[BotDefinition, IntentClassifier]) -> None:
    model = trained[1]
    strict = IntentClassifier(model.head, model.lexical, model.embedder,
                              settings=replace(model.settings, confidence_threshold=0.999))
    assert strict.predict("balance please?").out_of_scope
