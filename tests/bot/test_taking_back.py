"""The learning loop never gets stuck: what is accepted is what is in the bot's files, so a
suggestion can be taken back, turned down, or accepted again after a rollback removed it, and
a refused candidate says why, can be listed, and can be promoted on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.definition.loader import load_bot
from bot.learning import suggestions as store
from bot.learning.taking_back import without_block
from bot.versions.explain import explain
from bot.versions.measuring import Measured
from bot.versions.store import Scores

from .test_suggest import INTENTS, bot_dir  # noqa: F401  (fixture)
from .test_versions import ANSWERS

LEARNED_ID = "cheque-pay"


def learned_ids(root: Path) -> list[str]:
    items = yaml.safe_load((root / "faq" / "learned.yaml").read_text(encoding="utf-8")) or []
    return [str(i.get("id") or f"extends {i['extends']}") for i in items]


def test_unaccepting_takes_a_suggestion_back_and_it_can_be_accepted_again(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["suggest", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir), "--accept", "all"]) == 0
    assert learned_ids(bot_dir) == [LEARNED_ID, "extends reset-pin"]
    capsys.readouterr()
    assert main(["suggest", str(bot_dir), "--unaccept", f"faq-{LEARNED_ID}"]) == 2
    assert "intent-cheque_pay answers with this entry: un-accept it first" in \
        capsys.readouterr().err
    assert main(["suggest", str(bot_dir), "--unaccept", "intent-cheque_pay"]) == 0
    assert (bot_dir / "intents.yaml").read_text() == INTENTS  # as the user wrote it
    assert main(["suggest", str(bot_dir), "--unaccept", f"faq-{LEARNED_ID}"]) == 0
    assert f"took faq-{LEARNED_ID} back out of" in capsys.readouterr().out
    assert learned_ids(bot_dir) == ["extends reset-pin"]
    assert store.pending(bot_dir) == [f"faq-{LEARNED_ID}", "intent-cheque_pay"]
    assert main(["suggest", str(bot_dir), "--unaccept", f"faq-{LEARNED_ID}"]) == 2
    assert "is pending: only an accepted suggestion can be taken back" in \
        capsys.readouterr().err
    assert main(["suggest", str(bot_dir), "--accept", f"faq-{LEARNED_ID}"]) == 0
    assert learned_ids(bot_dir) == ["extends reset-pin", LEARNED_ID]
    assert load_bot(bot_dir).config.faq is not None


def test_a_rollback_that_removes_learned_knowledge_leaves_its_suggestions_pending(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["train", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir), "--accept", f"faq-{LEARNED_ID}"]) == 0
    assert main(["train", str(bot_dir)]) == 0
    capsys.readouterr()
    assert main(["rollback", str(bot_dir)]) == 0
    out = capsys.readouterr().out
    assert "serving version 1" in out
    assert "removed 1 file(s) version 1 did not have: faq/learned.yaml" in out
    assert "restored" not in out and not (bot_dir / "faq" / "learned.yaml").exists()
    assert f"faq-{LEARNED_ID}" in store.pending(bot_dir)  # not "accepted already"
    assert main(["suggest", str(bot_dir), "--accept", f"faq-{LEARNED_ID}"]) == 0
    assert learned_ids(bot_dir) == [LEARNED_ID]
    accepted = json.loads((bot_dir / "suggestions" / "accepted.json").read_text())
    assert [a["id"] for a in accepted["accepted"]] == [f"faq-{LEARNED_ID}"]


def test_a_rejected_suggestion_is_not_suggested_again(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert main(["suggest", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir), "--reject", "alt-reset-pin"]) == 0
    assert "rejected alt-reset-pin" in capsys.readouterr().out
    assert not (bot_dir / "suggestions" / "alt-reset-pin.yaml").exists()
    assert main(["suggest", str(bot_dir)]) == 0
    assert "alt-reset-pin" not in store.pending(bot_dir)
    assert not (bot_dir / "suggestions" / "alt-reset-pin.yaml").exists()
    assert main(["suggest", str(bot_dir), "--accept", f"faq-{LEARNED_ID}"]) == 0
    capsys.readouterr()
    assert main(["suggest", str(bot_dir), "--reject", f"faq-{LEARNED_ID}"]) == 2
    assert "is accepted: take it back with --unaccept first" in capsys.readouterr().err


def test_a_refusal_names_the_question_the_accepted_suggestion_broke_and_can_be_overruled(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    (bot_dir / "eval").mkdir()
    (bot_dir / "eval" / "answers.yaml").write_text(ANSWERS)
    assert main(["train", str(bot_dir)]) == 0
    assert main(["suggest", str(bot_dir)]) == 0
    path = bot_dir / "suggestions" / f"faq-{LEARNED_ID}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))  # a careless edit before accepting
    data["entry"]["alternatives"] = ["my card still hasn't come", "where is my new card?"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["suggest", str(bot_dir), "--accept", f"faq-{LEARNED_ID}"]) == 0
    capsys.readouterr()
    assert main(["train", str(bot_dir)]) == 1
    out = capsys.readouterr().out
    assert "candidate refused: answers right" in out
    assert "held-out question(s) answered worse than by the served version" in out
    assert "a1 \"my card still hasn't come\": right -> " in out
    assert "served:    Cards arrive within 5-7 working days" in out
    assert f"uses knowledge from: faq-{LEARNED_ID}" in out
    assert f"edit or take back faq-{LEARNED_ID}" in out and "bot promote" in out
    assert main(["versions", str(bot_dir)]) == 0
    listing = capsys.readouterr().out
    assert "refused candidate" in listing and f"uses knowledge from: faq-{LEARNED_ID}" in listing
    (bot_dir / "faq" / "main.yaml").write_text((bot_dir / "faq" / "main.yaml").read_text()
                                               + "\n")
    assert main(["promote", str(bot_dir)]) == 2
    assert "the bot's files changed since the candidate was trained" in capsys.readouterr().err
    (bot_dir / "faq" / "main.yaml").write_text((bot_dir / "faq" / "main.yaml").read_text()
                                               .rstrip("\n") + "\n")
    assert main(["promote", str(bot_dir)]) == 0
    assert load_bot(bot_dir).version == 2
    assert main(["promote", str(bot_dir)]) == 2
    assert "no refused candidate to promote" in capsys.readouterr().err


def test_a_test_that_predates_new_knowledge_is_named_as_such() -> None:
    scores = Scores(1.0, 0.0, 0.0, 1, 1, (), "y")
    served = Measured(scores, {"q1": {"question": "mortgage?", "outcome": "abstained",
                                      "reply": "Sorry.", "entries": []}})
    step = {"step": 1, "user": "Can I get a mortgage?", "problems": ["expected no answer"],
            "reply": "We offer mortgages from 4.1%.", "entries": ["exchange-rate", "mortgage"],
            "abstains": True, "contradicted": False}
    candidate = Measured(scores, {"q1": {"question": "mortgage?", "outcome": "wrong",
                                         "reply": "We offer...", "entries": ["mortgage"]}},
                         {"trust.yaml: mortgages": [step]})
    lines = explain(candidate, served, {"mortgage": "faq-mortgage"}, "acme")
    assert "q1 'mortgage?': abstained -> wrong" in lines[1]
    assert "conversation test 'trust.yaml: mortgages' fails now" in lines[5]
    assert any("the test expects the bot not to know this, and knowledge from faq-mortgage "
               "answers it now" in line for line in lines)
    assert lines[-1] == ("to fix: update the test(s) 'trust.yaml: mortgages' if the bot should "
                         "answer now; or edit or take back faq-mortgage (`bot suggest acme "
                         "--unaccept faq-mortgage`), then `bot train acme` again; or serve the "
                         "candidate anyway with `bot promote acme`")


def test_only_the_accepted_block_is_removed() -> None:
    text = ("# header\n\n# faq-a: from 3 past conversations (bot suggest)\n- id: a\n"
            "  answer: |\n    one\n\n    two\n\n# faq-b: from 2 past conversations (bot "
            "suggest)\n- id: b\n  answer: B\n- id: mine  # added by hand\n  answer: M\n")
    assert without_block(text, "faq-a") == (
        "# header\n\n# faq-b: from 2 past conversations (bot suggest)\n- id: b\n  answer: B\n"
        "- id: mine  # added by hand\n  answer: M\n")
    assert without_block(text, "faq-b") == text.replace(
        "\n# faq-b: from 2 past conversations (bot suggest)\n- id: b\n  answer: B\n", "")
    assert without_block(text, "faq-c") is None
