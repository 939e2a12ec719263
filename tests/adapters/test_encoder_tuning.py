"""Contrastive tuning of a copy of MiniLM for the intent classifier (classifier.encoder_steps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adapters.classifiers.intents import ENCODER_DIR, IntentClassifier
from adapters.training.encoder_tuning import pairable_intents, tune_encoder
from bot.build import train_classifiers, train_intents
from bot.definition.config import BotDefinition
from bot.errors import ConfigError, ModelError, NotTrainedError
from bot.runtime import load_analyzer, load_intents
from retrieval.embedder import SentenceEmbedder
from tests.adapters.test_intents import INTENTS_YAML, write_bot

TUNED_YAML = INTENTS_YAML + "classifier:\n  encoder_steps: 8\n"


def separation(embedder: SentenceEmbedder, texts: list[str], labels: list[str]) -> float:
    """Mean cosine between examples of one intent minus mean cosine across intents."""
    vectors = embedder.embed(texts)
    similarity = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    off_diagonal = ~np.eye(len(texts), dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


def examples(bot: BotDefinition) -> tuple[list[str], list[str]]:
    pairs = [(text, i.name) for i in bot.config.intents for text in i.examples]
    return [t for t, _ in pairs], [label for _, label in pairs]


@pytest.fixture(scope="module")
def tuned_bot(tmp_path_factory: pytest.TempPathFactory,
              embedder: SentenceEmbedder) -> tuple[BotDefinition, IntentClassifier]:
    bot = write_bot(tmp_path_factory.mktemp("tuned") / "bank", TUNED_YAML)
    model, rebuilt = train_intents(bot, embedder)  # the model in memory, as trained
    assert rebuilt and model.tuned
    steps = train_classifiers(bot, embedder, progress=False)  # adds the sentiment model
    assert not steps["intent classifier"]["rebuilt"]
    assert "own encoder tuned for 8 steps" in steps["intent classifier"]["detail"]
    return bot, model


def test_tuning_pulls_an_intents_examples_together(tmp_path: Path,
                                                   embedder: SentenceEmbedder) -> None:
    texts, labels = examples(write_bot(tmp_path / "bank"))
    copy = SentenceEmbedder(embedder.name)
    before = separation(copy, texts, labels)
    losses = tune_encoder(copy.model, texts, labels, steps=12, seed=0)
    copy.clear_cache()  # embeddings cached before tuning are stale
    after = separation(copy, texts, labels)
    assert len(losses) == 12
    assert after > before + 0.05
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_the_shared_encoder_is_left_as_it_was(tuned_bot: tuple[BotDefinition, IntentClassifier],
                                              embedder: SentenceEmbedder) -> None:
    bot, model = tuned_bot
    text = "my debit card is missing"
    fresh = SentenceEmbedder(embedder.name)
    assert embedder.embed([text]) == pytest.approx(fresh.embed([text]), abs=1e-5)
    assert model.embedder is not embedder
    tuned_vector = model.embedder.embed([text])
    assert float(tuned_vector[0] @ fresh.embed([text])[0]) < 0.999  # the copy did change
    analysis = load_analyzer(bot, embedder).analyze(text)
    assert analysis.vector == pytest.approx(fresh.embed([text])[0], abs=1e-5)  # for the FAQ
    assert analysis.intent is not None and analysis.intent.intent == "lost_card"


def test_tuned_classifier_is_saved_and_reloaded(tuned_bot: tuple[BotDefinition, IntentClassifier],
                                                embedder: SentenceEmbedder) -> None:
    bot, model = tuned_bot
    folder = bot.classifier_dirs.intents
    assert (folder / ENCODER_DIR / "model.safetensors").is_file()
    assert json.loads((folder / "manifest.json").read_text())["tuned_encoder"] is True
    again, rebuilt = train_intents(bot, embedder)
    assert not rebuilt and again.tuned
    for text in ("how much cash is there in my account?", "wire 20 dollars to my brother"):
        before, after = model.predict(text).ranking, again.predict(text).ranking
        assert [n for n, _ in after] == [n for n, _ in before]
        assert [p for _, p in after] == pytest.approx([p for _, p in before], abs=1e-4)


def test_changing_the_steps_makes_the_classifier_stale(
        tuned_bot: tuple[BotDefinition, IntentClassifier], embedder: SentenceEmbedder) -> None:
    bot = tuned_bot[0]
    changed = write_bot(bot.root, TUNED_YAML.replace("encoder_steps: 8", "encoder_steps: 9"))
    try:
        with pytest.raises(NotTrainedError, match="out of date"):
            load_intents(changed, embedder)
    finally:
        write_bot(bot.root, TUNED_YAML)


def test_a_missing_tuned_encoder_is_a_clear_error_and_is_retrained(
        tmp_path: Path, tuned_bot: tuple[BotDefinition, IntentClassifier],
        embedder: SentenceEmbedder) -> None:
    bot = write_bot(tmp_path / "bank", TUNED_YAML)
    shutil.copytree(tuned_bot[0].classifier_dirs.intents, bot.classifier_dirs.intents)
    load_intents(bot, embedder)  # a copied build is as good as the original
    (bot.classifier_dirs.intents / ENCODER_DIR / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=f"{ENCODER_DIR}.*damaged.*bot train --force"):
        load_intents(bot, embedder)
    shutil.rmtree(bot.classifier_dirs.intents / ENCODER_DIR)
    with pytest.raises(ModelError, match="tuned encoder is missing"):
        load_intents(bot, embedder)
    model, rebuilt = train_intents(bot, embedder)
    assert rebuilt and (bot.classifier_dirs.intents / ENCODER_DIR / "model.safetensors").is_file()
    assert model.predict("balance please").intent == "check_balance"


def test_tuning_needs_two_intents_with_two_examples(tmp_path: Path,
                                                    embedder: SentenceEmbedder) -> None:
    assert pairable_intents(["a", "a", "b", "c"], ["x", "x", "y", "y"]) == {"y": ["b", "c"]}
    bot = write_bot(tmp_path / "bank", """
        name: bank
        intents:
          - name: greet
            examples: ["hello", "hi there"]
          - name: bye
            examples: ["goodbye"]
        classifier:
          encoder_steps: 5
        """)
    with pytest.raises(ModelError, match="encoder_steps needs at least two intents"):
        train_intents(bot, embedder)


def test_negative_steps_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encoder_steps"):
        write_bot(tmp_path / "bank", INTENTS_YAML + "classifier:\n  encoder_steps: -1\n")
