"""Intent evaluation: metrics on known predictions, k-fold CV, the `bot eval` command."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from adapters.classifiers.intents import OUT_OF_SCOPE, IntentPrediction
from bot.cli import main
from bot.definition.loader import load_bot
from bot.errors import ConfigError
from bot.evaluation.intents import cross_validate, plot_confusion, read_labelled_csv, score
from retrieval.embedder import SentenceEmbedder

BOT = """
name: evalbot
intents:
  - name: check_balance
    examples: ["what's my balance", "how much money do I have", "show my account balance",
               "balance please", "how much is left in my account", "current balance?"]
  - name: lost_card
    examples: ["I lost my card", "my card was stolen", "I can't find my credit card",
               "someone took my card", "block my card, it's gone", "debit card missing"]
  - name: opening_hours
    examples: ["when are you open", "what are your opening hours", "are you open on sunday",
               "what time do you close", "branch hours", "until when is the branch open"]
"""

TEST_CSV = """text,intent
how much do I have in my account,check_balance
tell me my balance please,check_balance
my card is missing,lost_card
somebody stole my visa card,lost_card
what are your hours on saturday,opening_hours
what's the weather in Rome,out_of_scope
recommend me a good movie,
"""


def guess(intent: str | None, confidence: float = 0.9, *,
          ambiguous: bool = False) -> IntentPrediction:
    return IntentPrediction(intent, confidence, [(intent or "x", confidence)],
                            out_of_scope=intent is None, ambiguous=ambiguous)


def test_scores_on_known_predictions() -> None:
    expected = ["a", "a", "b", "b", OUT_OF_SCOPE, OUT_OF_SCOPE]
    predictions = [guess("a"), guess("b"), guess("b"), guess(None), guess(None),
                   guess("a", ambiguous=True)]
    report = score([f"t{i}" for i in range(6)], expected, predictions, known_intents=["a", "b"])
    assert report.accuracy == pytest.approx(3 / 6)
    assert report.per_intent["a"].precision == pytest.approx(1 / 2)
    assert report.per_intent["a"].recall == pytest.approx(1 / 2)
    assert report.per_intent["b"].precision == pytest.approx(1 / 2)
    assert report.per_intent["b"].recall == pytest.approx(1 / 2)
    assert report.macro_f1 == pytest.approx(0.5)
    assert report.out_of_scope is not None
    assert report.out_of_scope.precision == pytest.approx(1 / 2)
    assert report.out_of_scope.recall == pytest.approx(1 / 2)
    assert report.labels == ["a", "b", OUT_OF_SCOPE]
    assert report.confusion == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert report.ambiguous_rate == pytest.approx(1 / 6)
    assert len(report.mistakes) == 3
    text = report.format()
    assert "accuracy  50.00%" in text and "out-of-scope precision 50.00%" in text


def test_unknown_gold_intents_are_reported() -> None:
    report = score(["x"], ["refund"], [guess("a")], known_intents=["a"])
    assert report.unknown_intents == ["refund"] and report.out_of_scope is None


def test_csv_reading(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(TEST_CSV)
    rows = read_labelled_csv(good)
    assert rows[-1] == ("recommend me a good movie", OUT_OF_SCOPE)
    assert len(rows) == 7
    bad = tmp_path / "bad.csv"
    bad.write_text("message,intent\nhi,greet\n")
    with pytest.raises(ConfigError, match=r"bad\.csv: needs a 'text' column"):
        read_labelled_csv(bad)
    with pytest.raises(ConfigError, match="file not found"):
        read_labelled_csv(tmp_path / "missing.csv")


def write_bot(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(textwrap.dedent(BOT))
    (root / "test.csv").write_text(TEST_CSV)
    return root


def test_cross_validation_predicts_every_example_once(tmp_path: Path,
                                                      embedder: SentenceEmbedder) -> None:
    bot = load_bot(write_bot(tmp_path / "evalbot"))
    report = cross_validate(bot, embedder, folds=3)
    assert report.examples == 18
    assert sum(map(sum, report.confusion)) == 18
    assert report.accuracy >= 0.6
    assert set(report.per_intent) == {"check_balance", "lost_card", "opening_hours"}
    picture = plot_confusion(report, tmp_path / "out" / "cv.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cross_validation_tunes_an_encoder_per_fold_on_its_training_part(
        tmp_path: Path, embedder: SentenceEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_bot(tmp_path / "evalbot")
    (root / "bot.yaml").write_text(textwrap.dedent(BOT) + "classifier:\n  encoder_steps: 3\n")
    import bot.evaluation.intents as evaluation

    tuned_on: list[list[str]] = []
    real = evaluation.tuned_encoder

    def recording(base: SentenceEmbedder, texts: list[str], labels: list[str],
                  **options: int) -> SentenceEmbedder:
        tuned_on.append(list(texts))
        return real(base, texts, labels, **options)

    monkeypatch.setattr(evaluation, "tuned_encoder", recording)
    stock = embedder.embed(["my card was stolen"])
    report = cross_validate(load_bot(root), embedder, folds=3)
    assert len(tuned_on) == 3
    assert all(len(texts) == 12 for texts in tuned_on)  # 2 of 3 folds of 18 examples
    counts = Counter(t for texts in tuned_on for t in texts)
    assert len(counts) == 18 and set(counts.values()) == {2}  # each one held out once
    assert report.examples == 18 and report.accuracy >= 0.6
    assert embedder.embed(["my card was stolen"]) == pytest.approx(stock, abs=1e-6)


def test_eval_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_bot(tmp_path / "evalbot")
    out = tmp_path / "reports"
    args = ["eval", str(root), "--intents", str(root / "test.csv"), "--out", str(out)]
    assert main(args) == 2  # not trained yet
    assert "run `bot train`" in capsys.readouterr().err
    assert main(["eval", str(root)]) == 2
    assert "--intents" in capsys.readouterr().err

    from bot.build import train_intents

    train_intents(load_bot(root), SentenceEmbedder("all-MiniLM-L6-v2"))
    assert main([*args, "--cv", "2"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "2-fold cross-validation" in printed
    report = json.loads((out / "intents_report.json").read_text())
    assert report["examples"] == 7
    assert report["accuracy"] >= 5 / 7
    assert report["out_of_scope"]["recall"] == 1.0
    assert {p.name for p in out.iterdir()} == {"intents_report.json", "intents_confusion.png",
                                               "cv2_report.json", "cv2_confusion.png",
                                               "intents_confusion.svg", "cv2_confusion.svg"}
    svg = (out / "cv2_confusion.svg").read_text()
    assert "<title>2-fold cross-validation (accuracy" in svg and "rows: expected" in svg
