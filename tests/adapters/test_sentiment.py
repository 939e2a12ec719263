"""Sentiment head on MiniLM (trained on the packaged data) and the frustration signal."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

from adapters.classifiers.sentiment import (
    LABELS,
    TRAINING_DATA,
    Frustration,
    SentimentClassifier,
    SentimentPrediction,
    clean,
    read_training_data,
    train_sentiment,
)
from adapters.errors import ModelError, NotTrainedError
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from retrieval.embedder import SentenceEmbedder


@pytest.fixture(scope="module")
def model(embedder: SentenceEmbedder) -> SentimentClassifier:
    return SentimentClassifier.train(embedder)


def bot_in(root: Path) -> BotDefinition:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(textwrap.dedent("name: s\n"))
    return load_bot(root)


def test_packaged_training_data_is_balanced_and_original() -> None:
    rows = read_training_data()
    counts = {label: sum(1 for _, lab in rows if lab == label) for label in LABELS}
    assert len(rows) >= 400 and min(counts.values()) >= 130
    assert len({text.lower() for text, _ in rows}) == len(rows)
    assert not any("@" in text for text, _ in rows)  # no tweets copied in


@pytest.mark.parametrize(("text", "label"), [
    ("I have been waiting for a week and still nobody has fixed my broken router", "negative"),
    ("You charged me twice and your agent was rude. Awful.", "negative"),
    ("Can you tell me which documents I need to bring to the branch?", "neutral"),
    ("My new address is 12 Elm Street.", "neutral"),
    ("Thank you so much, the engineer was brilliant and quick!", "positive"),
    ("Really happy with the new plan, great value", "positive"),
])
def test_held_out_messages(model: SentimentClassifier, text: str, label: str) -> None:
    prediction = model.predict(text)
    assert prediction.label == label
    assert sum(prediction.scores.values()) == pytest.approx(1.0)
    assert prediction.confidence == max(prediction.scores.values())


def test_handles_and_links_are_ignored() -> None:
    assert clean("@AcmeAir thanks! https://t.co/x1 see www.acme.com") == "thanks! see"
    assert clean("@only") == "@only"


def test_frustration_rises_with_negative_messages_and_decays() -> None:
    negative = SentimentPrediction("negative", 0.95,
                                   {"negative": 0.95, "neutral": 0.04, "positive": 0.01})
    positive = SentimentPrediction("positive", 0.9,
                                   {"negative": 0.02, "neutral": 0.08, "positive": 0.9})
    state = Frustration()
    levels = []
    for _ in range(3):
        state = state.update(negative, decay=0.6)
        levels.append(state.level)
    assert levels == sorted(levels) and state.streak == 3 and state.messages == 3
    assert state.frustrated()
    assert not Frustration().update(negative).frustrated()  # one message is not enough
    calmer = state.update(positive).update(positive)
    assert calmer.streak == 0 and calmer.level < 0.3 and not calmer.frustrated()
    assert Frustration.from_dict(state.to_dict()) == state
    assert Frustration.from_dict({"level": "x"}) == Frustration()
    assert Frustration.from_dict(None) == Frustration()


def test_frustration_from_real_predictions(model: SentimentClassifier) -> None:
    state = Frustration()
    for text in ["my card still hasn't arrived", "this is ridiculous, third time I ask",
                 "useless, I want to speak to someone"]:
        state = state.update(model.predict(text))
    assert state.frustrated(streak=3)


def test_train_save_load_and_staleness(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    bot = bot_in(tmp_path / "s")
    with pytest.raises(NotTrainedError, match="run `bot train`"):
        SentimentClassifier.load_from(bot.classifier_dirs.sentiment, embedder)
    first, rebuilt = train_sentiment(bot.classifier_dirs.sentiment, embedder)
    assert rebuilt
    second, rebuilt = train_sentiment(bot.classifier_dirs.sentiment, embedder)
    assert not rebuilt
    text = "Thanks, that was really helpful"
    assert second.predict(text).scores == pytest.approx(first.predict(text).scores, abs=1e-5)
    with pytest.raises(NotTrainedError, match="model"):
        SentimentClassifier.load_from(bot.classifier_dirs.sentiment,
                                      SentenceEmbedder("some/other-model"))
    (bot.classifier_dirs.sentiment / "head.npz").write_bytes(b"junk")
    with pytest.raises(ModelError, match="damaged"):
        SentimentClassifier.load_from(bot.classifier_dirs.sentiment, embedder)


def test_bad_training_labels_are_reported(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    with data.open("w", newline="") as handle:
        csv.writer(handle).writerows([["label", "text"], ["angry", "grr"]])
    with pytest.raises(ModelError, match="unknown sentiment label 'angry'"):
        read_training_data(data)
    assert TRAINING_DATA.is_file()
