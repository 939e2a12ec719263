"""Review marks, the learning loop's third input: a marked answer joins the gate's held-out
questions and a wrong one becomes a suggestion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.errors import ConfigError
from bot.learning.marks import Mark, knowledge_gaps, load_marks
from bot.learning.suggestions import pending

from .test_suggest import MISSED, bot_dir  # noqa: F401  (fixture)

FORGOT = MISSED  # the index ranks card-not-arrived first
MARKS = f"""\
- question: "{FORGOT}"
  mark: wrong
  answer: reset-pin
  answered: [card-not-arrived]
  by: Anna
- question: do you sell car insurance?
  mark: should_not_answer
- question: how long will a transfer take
  mark: right
  answered: [transfer-time]
- question: can I open a savings account for my child?
  mark: wrong
  answer: none
  answered: [transfer-time]
"""


def test_marks_are_read_and_bad_ones_named(tmp_path: Path) -> None:
    path = tmp_path / "marks.yaml"
    path.write_text(MARKS)
    wrong, nothing, right, gap = load_marks(path)
    assert knowledge_gaps([wrong, nothing, right, gap, gap]) == [gap.question]
    assert wrong == Mark(FORGOT, "wrong", "reset-pin", ("card-not-arrived",), "Anna")
    assert wrong.expected == ("reset-pin",) and nothing.expected == ("none",)
    assert right.expected == ("transfer-time",)
    assert load_marks(tmp_path / "missing.yaml") == []
    path.write_text("- question: hi\n  mark: meh\n")
    with pytest.raises(ConfigError, match=r"marks.yaml:1: \[0\]\.mark: 'mark' must be one of"):
        load_marks(path)
    path.write_text("- {mark: wrong}\n")
    with pytest.raises(ConfigError, match="needs 'question'"):
        load_marks(path)


def test_a_marked_wrong_answer_is_measured_by_the_gate_and_suggested_as_a_wording(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    (bot_dir / "eval").mkdir()
    (bot_dir / "eval" / "marks.yaml").write_text(MARKS)
    assert main(["train", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir)]) == 0
    suggestion = yaml.safe_load((bot_dir / "suggestions" / "alt-reset-pin.yaml").read_text())
    assert FORGOT in suggestion["entry"]["alternatives"]
    assert any(w.startswith(MISSED) for w in suggestion["entry"]["alternatives"])  # mined
    assert any(e.get("source") == "review mark" for e in suggestion["examples"])
    assert "alt-reset-pin" in pending(bot_dir)
    gaps = yaml.safe_load((bot_dir / "suggestions" / "unanswered.yaml").read_text())
    assert gaps["marked_wrong_unanswerable"] == ["can I open a savings account for my child?"]
    assert main(["suggest", str(bot_dir), "--accept", "alt-reset-pin"]) == 0
    capsys.readouterr()
    assert main(["train", str(bot_dir)]) == 0
    assert "version 2 promoted" in capsys.readouterr().out
    first, second = (json.loads((bot_dir / ".bot" / "versions" / n / "gate.json").read_text())
                     for n in ("1", "2"))  # measured when the second was trained
    assert first["answers"]["mark-1"]["question"] == FORGOT
    assert first["answers"]["mark-1"]["outcome"] != "right"  # the mark's very complaint
    assert second["answers"]["mark-1"]["outcome"] == "right"
    assert first["answers"]["mark-3"]["outcome"] == second["answers"]["mark-3"]["outcome"] \
        == "right"
    assert main(["suggest", str(bot_dir)]) == 0  # the marked wording is in the bot now
    assert not (bot_dir / "suggestions" / "alt-reset-pin-2.yaml").exists()
