"""Private by construction: suggestions mined from acme_bank's real history hold no customer's
name and no redaction placeholder, their answers are the agents' consensus without one case's
details, and `bot suggest --accept` refuses private text unless forced."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks.learning import history_names, private_leaks
from bot.cli import main
from bot.definition.loader import load_bot
from bot.learning import import_files, load_conversations
from bot.learning.privacy import (
    PLACEHOLDER,
    Names,
    anonymous,
    general_answer,
    private,
    vocabulary,
)
from retrieval.knowledge import load_passages

from ..conftest import FAQ_YAML, REPO, MakeBot
from .test_suggest import BOT_YAML, CHEQUES, INTENTS, turn

ACME = REPO / "example_bots" / "acme_bank"
HISTORY = ACME / "history" / "past_conversations.jsonl"
# people the history names, read off it by hand (customers, their relatives, agents)
PEOPLE = ("Geoffrey Palmer", "Susan Palmer", "Mrs Jones", "Gareth Jones", "Mr Hughes",
          "Margaret Hughes", "Raj Patel", "Michael Grant", "Jane", "Sophie", "Maria", "Tom")


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of acme_bank after `bot import` of its history and `bot suggest`."""
    root = tmp_path_factory.mktemp("private") / "acme_bank"
    shutil.copytree(ACME, root, ignore=shutil.ignore_patterns(
        ".bot", "conversations", "suggestions", "sessions.sqlite3*"))
    assert main(["import", str(root), str(root / "history" / "past_conversations.jsonl")]) == 0
    assert main(["suggest", str(root)]) == 0
    return root


@pytest.fixture
def acme_copy(acme: Path, tmp_path: Path) -> Path:
    """The mined copy again, for a test that accepts (nothing is embedded to accept)."""
    root = tmp_path / "acme_bank"
    shutil.copytree(acme, root)
    return root


def merged_texts(root: Path) -> dict[str, list[str]]:
    """Each suggestion's texts that accepting merges into the bot."""
    found: dict[str, list[str]] = {}
    for path in sorted((root / "suggestions").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        item = data.get("entry") or data.get("intent")
        if item is None:
            continue
        found[path.stem] = [t for key in ("question", "answer", "alternatives", "examples")
                            for t in ([item[key]] if isinstance(item.get(key), str)
                                      else item.get(key) or [])]
    return found


def test_no_suggestion_from_the_acme_history_holds_a_placeholder_or_a_name(acme: Path) -> None:
    texts = merged_texts(acme)
    assert sum(k.startswith("faq-") for k in texts) >= 8  # the topics are still found
    for suggestion, items in texts.items():
        for text in items:
            assert not PLACEHOLDER.search(text), (suggestion, text)
            assert not [p for p in PEOPLE if re.search(rf"\b{p}\b", text)], (suggestion, text)
    assert private_leaks(HISTORY, acme / "suggestions") == []  # the benchmark's own check


def test_answers_are_agreed_replies_without_one_customers_details(acme: Path) -> None:
    conversations = {c.id: c for c in load_conversations(acme)}
    for path in sorted((acme / "suggestions").glob("faq-*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        answer = data["entry"]["answer"]
        replies = [m.text for c in data["conversations"]
                   for m in conversations[c].messages if m.speaker == "agent"]
        sentences = [s for s in re.split(r"(?<=[.!?:])\s+", answer) if s]
        # every sentence is an agent's, from the conversations the entry was mined from
        assert all(any(s in " ".join(r.split()) for r in replies) for s in sentences), \
            (path.name, answer)
    died = yaml.safe_load((acme / "suggestions" / "faq-died-passed.yaml").read_text())
    assert "Bereavement team" in died["entry"]["answer"]  # the policy stays, [PHONE] goes
    assert "masked personal data" in (acme / "suggestions" / "faq-died-passed.yaml").read_text()
    loan = yaml.safe_load((acme / "suggestions" / "faq-loan.yaml").read_text())["entry"]
    assert "£25,000" in loan["answer"] and "£30,000" not in loan["answer"]


def test_the_name_finder_flags_none_of_acmes_own_faq(acme: Path) -> None:
    bot = load_bot(acme)
    assert bot.config.faq is not None
    passages = [p for p in load_passages(bot.faq_sources(), bot.config.faq)
                if not p.source.endswith("learned.yaml")]
    learned = Names.learn(load_conversations(acme), vocabulary(passages))
    assert {"Palmer", "Geoffrey", "Jones", "Sophie", "Hughes"} <= learned.names
    bare = Names(learned.names)  # without leaving out the FAQ's own words: a harder test
    flagged = [(p.id, f.value) for p in passages
               for text in (p.text, p.question or "", *p.alternatives)
               for f in private(text, bare)]
    assert flagged == []
    found = private("My father, Geoffrey Palmer, died. Mrs Jones called [PHONE].", learned)
    assert [f.value for f in found] == ["Geoffrey Palmer", "Mrs Jones", "[PHONE]"]
    assert anonymous("my father, Geoffrey Palmer, passed away", learned) == \
        "my father passed away"
    assert anonymous("a cheque made out to 'Mr & Mrs Jones'", learned) is None


HANDMADE = """\
id: faq-handmade
kind: faq
count: 2
entry:
  id: bereavement-contact
  question: How do I reach the bereavement team?
  answer: Call the Bereavement team on {answer}.
  alternatives:
    - bereavement team phone number
    - {alternative}
"""


@pytest.mark.parametrize(("answer", "alternative", "held"), [
    ("[PHONE]", "who do I call when someone dies", r"entry\.answer: holds \[PHONE\] "
                                                   r"\(masked personal data\)"),
    ("0800 123 4567", "Geoffrey Palmer died, who do I call",
     r"entry\.alternatives\[1\]: holds 'Geoffrey Palmer' \(a person's name\)"),
])
def test_accept_refuses_a_placeholder_or_a_name_unless_forced(
        acme_copy: Path, capsys: pytest.CaptureFixture[str], answer: str, alternative: str,
        held: str) -> None:
    path = acme_copy / "suggestions" / "faq-handmade.yaml"
    path.write_text(HANDMADE.format(answer=answer, alternative=alternative), encoding="utf-8")
    learned = acme_copy / "faq" / "learned.yaml"
    capsys.readouterr()

    assert main(["suggest", str(acme_copy), "--accept", "faq-handmade"]) == 2

    err = capsys.readouterr().err
    assert re.search(rf"suggestions/faq-handmade\.yaml:\d+: {held}", err), err
    assert "accept anyway with --force" in err and not learned.exists()

    assert main(["suggest", str(acme_copy), "--accept", "faq-handmade", "--force"]) == 0

    out = capsys.readouterr()
    assert re.search(rf"warning: accepted with --force: .*faq-handmade\.yaml:\d+: {held}",
                     out.err)
    assert "accepted faq-handmade -> " in out.out
    assert "bereavement-contact" in learned.read_text(encoding="utf-8")


def test_accept_all_of_the_mined_suggestions_needs_no_force(
        acme_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(acme_copy), "--accept", "all"]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err and out.out.count("accepted ") >= 15
    learned = (acme_copy / "faq" / "learned.yaml").read_text(encoding="utf-8")
    assert not PLACEHOLDER.search(learned)
    assert not [p for p in PEOPLE if re.search(rf"\b{p}\b", learned)]


def test_an_answer_keeps_what_several_replies_state_or_is_withheld() -> None:
    names = Names({"Jane"})
    replies = ["Loans go from £1,000 to £25,000 over 1 to 5 years, and checking your rate "
               "won't affect your credit score. We could not lend you £30,000.",
               "We lend £1,000 to £25,000 over 1 to 5 years.",
               "Our loans are £1,000 to £25,000. Jane, your £3,000 is fine."]
    customers = ["can I borrow 30k", "what loans do you do", "can I borrow £3,000"]
    answer = general_answer(replies, customers, [0, 1, 2], [0.9, 0.7, 0.8], [2, 2, 2], names)
    assert answer.text == replies[0].split(" We could")[0]
    assert answer.reply == 0 and "30000" in answer.removed[0]
    lone = general_answer(replies, customers, [0, 1, 2], [0.9, 0.7, 0.8], [0, 0, 0], names)
    assert lone.text is None and "no two conversations" in lone.reason
    private_only = ["Jane, call [PHONE].", "Hi Jane, call [PHONE] today."]
    withheld = general_answer(private_only, ["", ""], [0, 1], [0.9, 0.9], [1, 1], names)
    assert withheld.text is None and "masked personal data" in withheld.reason


def test_private_leaks_counts_names_and_placeholders_in_merged_text(tmp_path: Path) -> None:
    history = tmp_path / "past.jsonl"
    history.write_text(
        '{"id": "1", "messages": [{"role": "user", "content": "Hello,\\nmy card?\\n'
        'Kind regards,\\nJane Doe"}, {"role": "assistant", "name": "agent:Maria", '
        '"content": "Dear Mr Smith,\\nIt is on its way."}]}\n', encoding="utf-8")
    assert history_names(history) == {"Jane", "Doe", "Maria", "Smith"}
    folder = tmp_path / "suggestions"
    folder.mkdir()
    (folder / "faq-card.yaml").write_text(yaml.safe_dump({
        "kind": "faq", "entry": {"id": "card", "question": "Where is my card, Maria?",
                                 "answer": "Ask Acme Bank on [PHONE].",
                                 "alternatives": ["card for Jane Doe", "where is my card"]},
        "examples": [{"question": "Jane Doe here", "reply": "Dear Mr Smith"}]}))
    (folder / "unanswered.yaml").write_text("kind: unanswered\ngroups: []\n")

    leaks = private_leaks(history, folder)

    assert leaks == ["faq-card.yaml: entry.question: Maria",
                     "faq-card.yaml: entry.answer: [PHONE]",
                     "faq-card.yaml: entry.alternatives[0]: Jane",
                     "faq-card.yaml: entry.alternatives[0]: Doe"]


def test_a_topic_answered_only_with_one_customers_details_is_withheld_with_the_reason(
        make_bot: MakeBot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(bot_yaml=BOT_YAML, files={"faq/main.yaml": FAQ_YAML,
                                              "intents.yaml": INTENTS})
    people = ["Jane Smith", "Omar Haddad", "Lucy Brown", "Ken Adams", "Rosa Diaz", "Ian Wood"]
    chats = [{"id": f"c{n}", "messages": [
        turn("user", f"{question}\n\nThanks,\n{person}"),
        turn("assistant", f"{person.split()[0]}, your cheque for £{100 + 7 * n} reached us on "
             f"{n + 2} March; call us on [PHONE] about it.", "agent:Tom")]}
        for n, ((question, _), person) in enumerate(zip(CHEQUES, people, strict=False))]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(c) + "\n" for c in chats), encoding="utf-8")
    import_files(root, [export])

    assert main(["suggest", str(root)]) == 0

    assert "0 suggestions: 0 FAQ entries (from 0 conversations), 0 alternatives, 0 intents; " \
        "0 questions unanswered; 1 topic withheld (answers about one customer) -> " in \
        capsys.readouterr().out
    withheld = yaml.safe_load((root / "suggestions" / "withheld.yaml").read_text())
    (group,) = withheld["groups"]
    assert group["count"] == 6 and "one customer's case" in group["reason"]
    assert {"masked personal data", "a person's name", "an amount"} <= \
        set(re.findall(r"masked personal data|a person's name|an amount", group["reason"]))
    assert main(["suggest", str(root), "--accept", "all"]) == 2
    assert main(["suggest", str(root), "--accept", "withheld"]) == 2
    assert "lists questions whose answers would hold one customer's details" in \
        capsys.readouterr().err
