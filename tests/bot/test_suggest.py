"""`bot suggest`: past conversations mined into reviewable FAQ entries, alternatives and
intents, on a small real bot (the packaged embedder, conversations stored by `bot import`),
and each kind accepted into the bot's files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.definition.loader import load_bot
from bot.learning import import_files, load_conversations
from bot.learning import suggestions as store
from bot.learning.exchanges import exchanges
from bot.learning.mining import mine
from bot.learning.suggestions import Suggestion
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import SourceError
from retrieval.index import FaqIndex
from retrieval.knowledge import load_passages

from ..conftest import FAQ_YAML, MakeBot

BOT_YAML = """
name: test_bot
faq:
  sources: [faq/*.yaml]
  top_k: 2
  answer_threshold: 0.5
intents: intents.yaml
fallback:
  message: Sorry, I do not know.
"""
INTENTS = """\
# Our intents; keep this comment.
- name: greeting
  examples: [hi, hello]   # short ones
"""
FALLBACK = "Sorry, I do not know."
CHEQUE_POLICY = ("Our app can't scan cheques, so please post the cheque to Acme Bank, Cheque "
                 "Processing, PO Box 1234, London, with your name, sort code and account number "
                 "on the back. The money arrives 3 working days after we receive it.")
CHEQUES = [  # one topic the FAQ lacks, asked 8 ways; the agents give the same policy
    ("Can I pay a cheque into my account?", f"Hi, Tom here. {CHEQUE_POLICY}"),
    ("how do i deposit a cheque", f"Hi, Maria here. {CHEQUE_POLICY} It's free."),
    ("I got a cheque for my birthday, how can I pay it in?",
     f"Hi, Priya here. Happy birthday! {CHEQUE_POLICY}"),
    ("where do I send a cheque to pay it in", f"Hi, James here. {CHEQUE_POLICY}"),
    ("can i scan a cheque in the app?",
     "Hi, Aisha here. Sorry, our app can't scan cheques: please post it to Acme Bank, Cheque "
     "Processing, PO Box 1234, London, with your name and account number on the back. It's "
     "paid in 3 working days after it reaches us."),
    ("paying in a cheque, how does it work?", f"Hi, Tom here. {CHEQUE_POLICY}"),
    ("my gran gave me a cheque, what do I do with it?", f"Hi, Daniel here. {CHEQUE_POLICY}"),
]
MISSED = "I forgot the four digit code for my card"  # the index ranks card-not-arrived first
PIN_REPLY = ("You can set a new PIN yourself: open the app, go to Card settings and choose "
             "Reset PIN.")


def turn(role: str, text: str, name: str | None = None) -> dict[str, str]:
    return {"role": role, "content": text, **({"name": name} if name else {})}


def history() -> list[dict[str, object]]:
    """Conversations as a support team's export has them (OpenAI-style JSON lines)."""
    chats: list[dict[str, object]] = []
    for n, (question, reply) in enumerate(CHEQUES):
        chats.append({"id": f"cheque-{n}", "messages": [
            turn("user", question), turn("assistant", FALLBACK, "bot"),
            turn("user", "agent please"), turn("assistant", reply, "agent:Tom"),
            turn("user", "ok thanks")]})
    chats.append({"id": "cheque-greeting", "messages": [  # "hi" is not the question
        turn("user", "hi"), turn("assistant", "Hello! How can I help?", "bot"),
        turn("user", "Can a cheque be paid in at the post office?"),
        turn("assistant", FALLBACK, "bot"),
        turn("assistant", "Let me check that for you.", "agent:Sophie"),  # holding: not it
        turn("assistant", f"Thanks for waiting! {CHEQUE_POLICY}", "agent:Sophie")]})
    chats.append({"id": "pin-email", "messages": [
        turn("user", f"Dear Acme,\n\n{MISSED}. What can I do?\n\nKind regards,\nJane"),
        turn("assistant", f"Dear Jane,\n\n{PIN_REPLY}\n\nKind regards,\nTom\nAcme Bank Support",
             "agent:Tom")]})
    chats.append({"id": "covered", "messages": [  # the bot answered; nothing to learn
        turn("user", "How long does a bank transfer take?"),
        turn("assistant", "Domestic transfers arrive the same day; international ones take "
             "1-3 working days.", "bot"), turn("user", "thanks")]})
    return chats


@pytest.fixture
def bot_dir(make_bot: MakeBot, tmp_path: Path) -> Path:
    root = make_bot(bot_yaml=BOT_YAML, files={"faq/main.yaml": FAQ_YAML,
                                              "intents.yaml": INTENTS})
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(c) + "\n" for c in history()), encoding="utf-8")
    import_files(root, [export])
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def suggestion(root: Path, name: str) -> dict[str, object]:
    data = yaml.safe_load((root / "suggestions" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def index_of(root: Path, embedder: SentenceEmbedder) -> FaqIndex:
    bot = load_bot(root)
    assert bot.config.faq is not None
    return FaqIndex.build(load_passages(bot.faq_sources(), bot.config.faq), embedder)


def top(index: FaqIndex, embedder: SentenceEmbedder, text: str) -> tuple[str, float]:
    hit = index.search_vector(embedder.embed([text])[0], 1)[0]
    return hit.passage.id, hit.score


def test_questions_and_replies_skip_greetings_holding_messages_and_sign_offs(
        bot_dir: Path) -> None:
    found = {e.conversation.id: e for e in exchanges(load_conversations(bot_dir))}
    assert found["cheque-greeting"].question == "Can a cheque be paid in at the post office?"
    assert found["cheque-greeting"].reply == CHEQUE_POLICY  # "Thanks for waiting!" dropped
    assert found["pin-email"].question == f"{MISSED}. What can I do?"
    assert found["pin-email"].reply == PIN_REPLY
    assert found["cheque-0"].reply == CHEQUE_POLICY and found["covered"].reply is None


def test_suggest_writes_reviewable_files_and_nothing_else(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree(bot_dir)

    assert main(["suggest", str(bot_dir)]) == 0

    out = capsys.readouterr().out
    assert "3 suggestions: 1 FAQ entry (from 8 conversations), 1 alternative, 1 intent; " \
        "0 questions unanswered -> " in out
    after = tree(bot_dir)
    assert {k: v for k, v in after.items() if not k.startswith("suggestions/")} == before
    assert sorted(k for k in after if k.startswith("suggestions/")) == [
        "suggestions/alt-reset-pin.yaml", "suggestions/faq-cheque-pay.yaml",
        "suggestions/intent-cheque_pay.yaml"]
    text = (bot_dir / "suggestions" / "faq-cheque-pay.yaml").read_text(encoding="utf-8")
    assert f"bot suggest {bot_dir} --accept faq-cheque-pay" in text.splitlines()[2]
    faq = suggestion(bot_dir, "faq-cheque-pay")
    assert faq["kind"] == "faq" and faq["count"] == 8 and len(faq["conversations"]) == 8
    examples = faq["examples"]
    assert isinstance(examples, list) and len(examples) == 3
    assert set(examples[0]) == {"conversation", "source", "question", "reply"}
    assert re.fullmatch(r"export\.jsonl:\d+", examples[0]["source"])
    alt = suggestion(bot_dir, "alt-reset-pin")
    assert alt["entry"] == {"extends": "reset-pin", "alternatives": [f"{MISSED}. What can I do?"]}
    intent = suggestion(bot_dir, "intent-cheque_pay")
    assert intent["requires"] == "faq-cheque-pay"
    assert intent["intent"]["faq"] == "cheque-pay" and len(intent["intent"]["examples"]) == 8


def test_a_new_topic_becomes_an_entry_answered_with_an_agents_reply(
        bot_dir: Path, embedder: SentenceEmbedder) -> None:
    found = exchanges(load_conversations(bot_dir))
    mined = mine(found, index_of(bot_dir, embedder), embedder, threshold=0.5)

    (entry,) = mined.entries
    replies = {e.reply for e in found if e.conversation.id.startswith("cheque")}
    assert entry.answer in replies
    wordings = {q.lower() for q, _ in CHEQUES} | {"can a cheque be paid in at the post office?"}
    assert entry.question.lower() in wordings  # capitalised as a title
    assert {a.lower() for a in entry.alternatives} <= wordings
    assert entry.question not in entry.alternatives and len(entry.alternatives) <= 8
    assert {e.conversation.id for e in entry.exchanges} == \
        {f"cheque-{n}" for n in range(7)} | {"cheque-greeting"}


def test_accepting_each_kind_changes_what_the_bot_answers(
        bot_dir: Path, embedder: SentenceEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    index = index_of(bot_dir, embedder)
    assert top(index, embedder, "how do I pay in a cheque?")[0] != "cheque-pay"
    assert top(index, embedder, MISSED)[0] == "card-not-arrived"

    assert main(["suggest", str(bot_dir), "--accept", "faq-cheque-pay"]) == 0
    assert "accepted faq-cheque-pay -> " in capsys.readouterr().out
    index = index_of(bot_dir, embedder)
    entry = index.get("cheque-pay")
    assert entry is not None and entry.source.endswith("faq/learned.yaml")
    assert top(index, embedder, "how do I pay in a cheque?")[0] == "cheque-pay"

    assert main(["suggest", str(bot_dir), "--accept", "alt-reset-pin"]) == 0
    found, score = top(index_of(bot_dir, embedder), embedder, MISSED)
    assert found == "reset-pin" and score > 0.9

    assert main(["suggest", str(bot_dir), "--accept", "intent-cheque_pay"]) == 0
    intents = (bot_dir / "intents.yaml").read_text(encoding="utf-8")
    assert intents.startswith(INTENTS)  # the user's comments and layout kept
    (learned,) = [i for i in load_bot(bot_dir).config.intents if i.name == "cheque_pay"]
    assert learned.faq == "cheque-pay" and len(learned.examples) == 8

    accepted = json.loads((bot_dir / "suggestions" / "accepted.json").read_text())["accepted"]
    assert [a["id"] for a in accepted] == ["faq-cheque-pay", "alt-reset-pin", "intent-cheque_pay"]
    kept = tree(bot_dir / "suggestions")
    capsys.readouterr()
    assert main(["suggest", str(bot_dir)]) == 0  # nothing left to learn; accepted files kept
    assert capsys.readouterr().out.startswith("0 suggestions")
    assert tree(bot_dir / "suggestions") == kept


def test_accept_all_merges_the_files_as_edited(bot_dir: Path,
                                               embedder: SentenceEmbedder) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    path = bot_dir / "suggestions" / "faq-cheque-pay.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["entry"]["id"] = "paying-in-cheques"
    data["entry"]["answer"] = "Post it to PO Box 1234 with your account number on the back."
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    intent_path = bot_dir / "suggestions" / "intent-cheque_pay.yaml"
    intent_path.write_text(intent_path.read_text().replace("faq: cheque-pay",
                                                           "faq: paying-in-cheques"))

    assert main(["suggest", str(bot_dir), "--accept", "all"]) == 0

    entry = index_of(bot_dir, embedder).get("paying-in-cheques")
    assert entry is not None and entry.text.startswith("Post it to PO Box 1234")
    learned = (bot_dir / "faq" / "learned.yaml").read_text(encoding="utf-8")
    assert learned.startswith("# FAQ entries learned from past conversations")
    assert [i.faq for i in load_bot(bot_dir).config.intents] == [None, "paying-in-cheques"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("answer", " ", r"faq-cheque-pay\.yaml:\d+: entry\.answer: must be a non-empty string"),
    ("id", "reset-pin", r"faq-cheque-pay\.yaml:\d+: entry\.id: the FAQ already has an entry "
                        r"'reset-pin'"),
    ("colour", "red", r"entry\.colour: unknown key; valid keys are: alternatives, answer"),
])
def test_a_bad_edit_is_refused_naming_file_line_and_key(
        bot_dir: Path, capsys: pytest.CaptureFixture[str], key: str, value: str,
        message: str) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    path = bot_dir / "suggestions" / "faq-cheque-pay.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["entry"][key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    before = tree(bot_dir)
    capsys.readouterr()

    assert main(["suggest", str(bot_dir), "--accept", "faq-cheque-pay"]) == 2

    assert re.search(message, capsys.readouterr().err)
    assert tree(bot_dir) == before


def test_unknown_or_out_of_order_ids_are_clear_errors(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    before = tree(bot_dir)
    capsys.readouterr()

    assert main(["suggest", str(bot_dir), "--accept", "faq-nope"]) == 2
    assert "no suggestion 'faq-nope' (pending: faq-cheque-pay, alt-reset-pin, " \
        "intent-cheque_pay)" in capsys.readouterr().err
    assert main(["suggest", str(bot_dir), "--accept", "intent-cheque_pay"]) == 2
    assert "intent.faq: the FAQ has no entry 'cheque-pay' yet: accept faq-cheque-pay first" in \
        capsys.readouterr().err
    assert tree(bot_dir) == before
    assert main(["suggest", str(bot_dir), "--accept", "faq-cheque-pay"]) == 0
    assert main(["suggest", str(bot_dir), "--accept", "faq-cheque-pay"]) == 2
    assert "faq-cheque-pay was accepted already" in capsys.readouterr().err


def test_accepting_into_a_file_the_faq_does_not_read_says_which_pattern_to_add(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    bot_yaml = bot_dir / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("faq/*.yaml", "faq/main.yaml"))
    capsys.readouterr()

    assert main(["suggest", str(bot_dir), "--accept", "faq-cheque-pay"]) == 2

    assert "faq.sources (faq/main.yaml) does not read faq/learned.yaml: add 'faq/learned.yaml'" \
        in capsys.readouterr().err
    assert not (bot_dir / "faq" / "learned.yaml").exists()
    assert not (bot_dir / "suggestions" / "accepted.json").exists()


def test_extends_merges_wordings_and_an_unknown_id_names_file_and_item(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(bot_yaml=BOT_YAML.replace("intents: intents.yaml\n", ""), files={
        "faq/main.yaml": FAQ_YAML,
        "faq/more.yaml": "- extends: reset-pin\n  alternatives: [new pin please, 'How do I "
                         "reset my PIN?']\n"})
    bot = load_bot(root)
    assert bot.config.faq is not None
    (pin,) = [p for p in load_passages(bot.faq_sources(), bot.config.faq) if p.id == "reset-pin"]
    assert pin.alternatives == ("new pin please",)  # the question itself is not repeated

    (root / "faq" / "more.yaml").write_text("# more wordings\n- extends: reset-pn\n"
                                            "  alternatives: [new pin please]\n")
    assert main(["validate", str(root)]) == 2
    assert re.search(r"faq/more\.yaml:2: \[0\]\.extends: no FAQ entry has the id 'reset-pn'; "
                     r"did you mean 'reset-pin'\?", capsys.readouterr().err)
    (root / "faq" / "more.yaml").write_text("- extends: reset-pin\n  alternatives: []\n")
    with pytest.raises(SourceError, match=r"\[0\]\.alternatives: must be a non-empty list"):
        load_passages(bot.faq_sources(), bot.config.faq)


def test_clear_errors_without_conversations_or_without_an_faq(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(bot_yaml=BOT_YAML, files={"faq/main.yaml": FAQ_YAML,
                                              "intents.yaml": INTENTS})
    assert main(["suggest", str(root)]) == 2
    assert f"no imported conversations; run `bot import {root} FILE` first" in \
        capsys.readouterr().err
    (root / "bot.yaml").write_text("name: no_faq\n")
    assert main(["suggest", str(root)]) == 2
    assert "this bot has no FAQ" in capsys.readouterr().err


def test_accepted_suggestions_are_not_suggested_again_but_new_wordings_are(
        tmp_path: Path) -> None:
    accepted = tmp_path / "suggestions" / "accepted.json"
    accepted.parent.mkdir()
    accepted.write_text(json.dumps({"accepted": [{"id": "alt-reset-pin"}, {"id": "faq-x"}]}))
    (tmp_path / "faq").mkdir()  # accepted: what they merged is in the bot
    (tmp_path / "faq" / "learned.yaml").write_text(
        "- {id: x, question: 'Q?', answer: A.}\n- {extends: reset-pin, alternatives: [a pin]}\n")
    (tmp_path / "suggestions" / "faq-x.yaml").write_text("kept: as the user left it\n")
    (tmp_path / "suggestions" / "faq-old.yaml").write_text("pending, replaced\n")
    found = [Suggestion("faq-x", "faq", {"id": "x", "question": "Q?", "answer": "A."}, 3),
             Suggestion("alt-reset-pin", "alternatives",
                        {"extends": "reset-pin", "alternatives": ["new pin"]}, 1)]

    written = store.write(tmp_path, found, [])

    assert [s.id for s in written] == ["alt-reset-pin-2"]
    assert sorted(p.name for p in (tmp_path / "suggestions").iterdir()) == [
        "accepted.json", "alt-reset-pin-2.yaml", "faq-x.yaml"]
    assert (tmp_path / "suggestions" / "faq-x.yaml").read_text() == "kept: as the user left it\n"


def test_intents_go_to_a_new_intents_file_or_are_shown_to_paste_when_inline(
        bot_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(bot_dir)]) == 0
    bot_yaml = bot_dir / "bot.yaml"
    (bot_dir / "intents.yaml").unlink()
    bot_yaml.write_text(bot_yaml.read_text().replace(
        "intents: intents.yaml\n", "intents:\n  - name: hello\n    examples: [hi]\n"))
    capsys.readouterr()

    assert main(["suggest", str(bot_dir), "--accept", "all"]) == 2
    assert "intents: the intents are written inline here: move them to a file (intents: " \
        "intents.yaml) to accept intents, or add this one by hand:\n# intent-cheque_pay" in \
        capsys.readouterr().err
    assert not (bot_dir / "faq" / "learned.yaml").exists()  # all or nothing

    bot_yaml.write_text(BOT_YAML.replace("intents: intents.yaml\n", ""))
    assert main(["suggest", str(bot_dir), "--accept", "all"]) == 0
    assert "intents: intents.yaml" in bot_yaml.read_text()
    assert [i.name for i in load_bot(bot_dir).config.intents] == ["cheque_pay"]
