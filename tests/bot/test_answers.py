"""Answer trust end to end: the learned decision in a real bot's turns, multi-part questions,
and the evaluation a support team reads (`bot eval --answers`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.classifiers.intents import IntentPrediction
from bot.build import train
from bot.definition.loader import load_bot
from bot.dialogue.answerer import FaqAnswerer, Generator
from bot.dialogue.multi_part import leans_on_previous, question_parts
from bot.errors import BotError, ConfigError
from bot.evaluation.answers import AnswerCase, load_answer_cases, outcome
from bot.runtime import BotRuntime
from bot.sessions.store import Session
from foundation.messages import BotReply, Citation, UserMessage
from retrieval.index import FaqIndex

from ..adapters.test_answer_policy import PLAIN
from ..adapters.test_remote_model import remote, running_stand_in
from ..conftest import REPO, MakeBot

FAQ = """
- id: card-late
  question: My card has not arrived
  answer: Cards arrive within 5-7 working days; after 10 days we send a new one.
  alternatives: ["where is my card", "card still not delivered", "I never got the debit card"]
- id: pin-reset
  question: How do I reset my PIN?
  answer: Open the app, go to Card settings and choose Reset PIN.
  alternatives: ["forgot my pin", "change my pin number", "I need a new PIN"]
- id: transfer-time
  question: How long does a bank transfer take?
  answer: Domestic transfers arrive the same day; transfers abroad take 1-3 working days.
  alternatives: ["when will my transfer arrive", "transfer duration",
                 "how many days for a payment abroad"]
- id: opening-hours
  question: When is customer support open?
  answer: Support is open Monday to Friday, 9:00 to 17:00.
  alternatives: ["opening hours", "what time can I call you", "are you open on sunday"]
"""

BOT = """
name: trust_bot
faq:
  sources: [faq/main.yaml]
  top_k: 3
fallback:
  message: Sorry, I do not know that one.
channels:
  rest: {auth: none}
"""


@pytest.mark.parametrize(("text", "parts"), [
    ("How long does a transfer take and what does it cost?",
     ["How long does a transfer take", "what does it cost?"]),
    ("I want to change my PIN and also update my phone number",
     ["I want to change my PIN", "update my phone number"]),
    ("My card and PIN letter have not arrived", ["My card and PIN letter have not arrived"]),
    ("Where is my card? Thanks", ["Where is my card? Thanks"]),
    ("Where is my card? How do I reset my PIN?", ["Where is my card?", "How do I reset my PIN?"]),
])
def test_question_parts(text: str, parts: list[str]) -> None:
    assert question_parts(text) == parts


@pytest.mark.parametrize(("part", "leans"), [
    ("Is there a fee?", True), ("What should I do?", True), ("Was soll ich tun?", True),
    ("update my phone number", False),  # says what to do: its own topic
    ("How long does a transfer abroad take to arrive?", False),
])
def test_a_short_later_question_may_lean_on_the_part_before(part: str, leans: bool) -> None:
    assert leans_on_previous(part) is leans


def reply(kind: str, *cited: str, intent: str | None = None) -> BotReply:
    return BotReply("text", citations=tuple(Citation(c, "faq.yaml", c, 0.9) for c in cited),
                    kind=kind, intent=intent)


def test_outcomes_of_replies() -> None:
    case = AnswerCase("1", ("q",), (("a", "a2"),))
    assert outcome(case, reply("faq", "a")) == "right"
    assert outcome(case, reply("faq", "a2")) == "right"
    assert outcome(case, reply("faq", "b")) == "wrong"
    assert outcome(case, reply("faq", "a", "b")) == "wrong"
    assert outcome(case, reply("fallback")) == "abstained"
    assert outcome(case, reply("clarify")) == "clarified"
    assert outcome(case, reply("intent", intent="x")) == "wrong"
    assert outcome(case, reply("intent", intent="x"), {"x": "a"}) == "right"
    none = AnswerCase("2", ("q",), (("none",),))
    assert outcome(none, reply("faq", "a")) == "wrong"
    assert outcome(none, reply("fallback")) == "abstained"
    two = AnswerCase("3", ("q",), (("a",), ("b",)))
    assert outcome(two, reply("faq", "a")) == "partial"
    assert outcome(two, reply("faq", "a", "b")) == "right"


def test_answer_files_load_both_formats_and_bad_ones_are_named(tmp_path: Path) -> None:
    cases = load_answer_cases(REPO / "example_bots" / "acme_bank" / "eval" /
                              "customer_questions_blind.yaml")
    assert len(cases) >= 100 and all(c.expect for c in cases)
    assert any(len(c.turns) == 2 for c in cases) and any(len(c.expect) > 1 for c in cases)
    paraphrases = load_answer_cases(REPO / "example_bots" / "acme_bank" / "eval" /
                                    "faq_paraphrases.yaml")
    assert paraphrases[0].expect == ((paraphrases[0].id.rsplit("-", 1)[0],),)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- turns: [hello]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*\[0\].*'expect'"):
        load_answer_cases(bad)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> BotRuntime:
    root = tmp_path_factory.mktemp("trust") / "trust_bot"
    (root / "faq").mkdir(parents=True)
    (root / "bot.yaml").write_text(BOT)
    (root / "faq" / "main.yaml").write_text(FAQ)
    bot = load_bot(root)
    steps = {r.step for r in train(bot, progress=False)}
    assert {"faq encoder", "answer policy"} <= steps
    return BotRuntime.load(bot)


async def ask(runtime: BotRuntime, *texts: str) -> BotReply:
    answer = None
    for text in texts:
        answer = await runtime.dialogue.handle(UserMessage(sender=f"u-{texts[0]}", text=text,
                                                           channel="rest"))
    assert answer is not None
    return answer


async def test_a_known_question_is_answered_with_its_decision(runtime: BotRuntime) -> None:
    answer = await ask(runtime, "How do I reset my PIN?")
    assert answer.kind == "faq" and [c.passage_id for c in answer.citations] == ["pin-reset"]
    assert answer.decision is not None and answer.decision["action"] == "answer"
    assert answer.confidence == answer.decision["candidates"][0]["probability"]
    assert answer.intent is None  # no intent decided this reply


async def test_a_question_the_faq_does_not_cover_is_declined(runtime: BotRuntime) -> None:
    answer = await ask(runtime, "can I get a mortgage, and what is your interest rate?")
    assert answer.kind in ("fallback", "clarify") and not answer.citations
    assert answer.decision is not None and answer.decision["action"] in ("abstain", "clarify")


async def test_both_parts_of_a_two_part_question_are_answered(runtime: BotRuntime) -> None:
    answer = await ask(runtime, "When is customer support open? And how do I reset my PIN?")
    assert {c.passage_id for c in answer.citations} == {"opening-hours", "pin-reset"}
    assert "Monday to Friday" in answer.text and "Reset PIN" in answer.text
    assert answer.decision is not None and answer.decision["action"] == "answer_parts"


async def test_a_short_part_the_bot_is_unsure_of_is_read_with_the_part_before(
        runtime: BotRuntime) -> None:
    # alone, "How many days?" would get the transfer times; it asks about the card
    answer = await ask(runtime, "My card has not arrived. How many days?")
    assert [c.passage_id for c in answer.citations] == ["card-late"]
    assert "Domestic transfers" not in answer.text
    # a short part the bot is sure of is still answered on its own
    both = await ask(runtime, "I forgot my PIN. When are you open?")
    assert [c.passage_id for c in both.citations] == ["pin-reset", "opening-hours"]


def test_the_bot_retrieves_with_its_own_tuned_encoder(runtime: BotRuntime,
                                                      tmp_path: Path) -> None:
    bot = runtime.bot
    assert runtime.knowledge is not None
    name = runtime.knowledge.embedder.name
    assert name.startswith("all-MiniLM-L6-v2 tuned ")
    assert runtime.knowledge.index.manifest["model"] == name
    assert (bot.faq_encoder_dir / "config.json").is_file()
    # the tuned encoder lost: the index built with it is refused, by name, not used wrongly
    copy = tmp_path / "trust_bot"
    shutil.copytree(bot.root, copy)
    moved = load_bot(copy)
    shutil.rmtree(moved.faq_encoder_dir)
    with pytest.raises(BotError, match="FAQ index is out of date"):
        BotRuntime.load(moved)
    # tuning switched off: retrained with the stock encoder, and the old copy removed
    (copy / "bot.yaml").write_text(BOT + "embedder: {tuning_rounds: 0}\n")
    stock = load_bot(copy)
    steps = {r.step: r.rebuilt for r in train(stock, progress=False)}
    assert "faq encoder" not in steps and steps["faq index"] and steps["answer policy"]
    assert not stock.faq_encoder_dir.exists()
    assert FaqIndex.load(stock.index_dir).manifest["model"] == "all-MiniLM-L6-v2"


INTENTS = """
- name: pin_help
  response: pin
  examples: [I forgot my pin, reset my pin code, change my PIN, new pin please]
- name: opening
  response: hours
  examples: [when are you open, opening times, are you open today, what are your hours]
- name: check_card
  form: card_status
  examples: [track my card, card delivery status, where is my card order]
"""

RESPONSES = """
pin: {text: Open Card settings to manage your PIN.}
hours: {text: We are open Monday to Friday.}
"""

FORMS = """
card_status:
  slots:
    - name: card_last4
      type: regex
      pattern: '^\\D*(\\d{4})\\D*$'
      prompt: What are the last 4 digits?
"""


class CloseCall:
    """The bot's real analyzer, with the classifier torn between two intents."""

    def __init__(self, analyzer: Any, first: str, second: str) -> None:
        self.analyzer, self.names = analyzer, (first, second)

    def analyze(self, text: str, *, frustration: Any = None) -> Any:
        found = self.analyzer.analyze(text, frustration=frustration)
        close = IntentPrediction(self.names[0], 0.46, [(self.names[0], 0.46),
                                                       (self.names[1], 0.44)], ambiguous=True)
        return dataclasses.replace(found, intent=close)


async def test_two_close_canned_intents_are_left_to_the_answer_decision(
        make_bot: MakeBot) -> None:
    root = make_bot(BOT + "intents: intents.yaml\nresponses: responses.yaml\n"
                    "forms: forms.yaml\n",
                    files={"faq/main.yaml": FAQ, "intents.yaml": INTENTS,
                           "responses.yaml": RESPONSES, "forms.yaml": FORMS})
    bot = load_bot(root)
    train(bot, progress=False)
    loaded = BotRuntime.load(bot)
    parts = loaded.dialogue.router.parts
    real = parts.analyzer
    try:
        # two canned responses: the decision weighs them among the FAQ's candidates
        parts.analyzer = CloseCall(real, "pin_help", "opening")
        answer = await ask(loaded, "How long does a bank transfer take?")
        assert answer.decision is not None
        assert answer.kind == "faq" and answer.citations[0].passage_id == "transfer-time"
        # one of them starts a form: not the decision's to choose, so the bot asks
        parts.analyzer = CloseCall(real, "pin_help", "check_card")
        asked = await ask(loaded, "How long does a bank transfer take? ")
        assert asked.kind == "clarify" and asked.decision is None
        assert [b["payload"] for b in asked.buttons] == ["pin_help", "check_card"]
    finally:
        await loaded.close()


async def test_threshold_policy_still_works(make_bot: MakeBot) -> None:
    root = make_bot(BOT + "answers: {policy: threshold}\n", files={"faq/main.yaml": FAQ})
    bot = load_bot(root)
    train(bot, progress=False)
    assert not bot.policy_dir.exists()
    loaded = BotRuntime.load(bot)
    try:
        answer = await ask(loaded, "How do I reset my PIN?")
        assert answer.citations[0].passage_id == "pin-reset" and answer.decision is None
    finally:
        await loaded.close()


def test_bot_eval_answers_prints_and_writes_the_report(make_bot: MakeBot,
                                                       tmp_path: Path) -> None:
    root = make_bot(BOT, files={"faq/main.yaml": FAQ})
    questions = tmp_path / "questions.yaml"
    questions.write_text("- turns: ['I forgot the PIN of my card']\n  expect: [pin-reset]\n"
                         "- turns: ['do you sell travel insurance?']\n  expect: [none]\n")
    bot = [sys.executable, "-m", "bot"]
    subprocess.run([*bot, "train", str(root)], check=True, capture_output=True, timeout=600)
    done = subprocess.run([*bot, "eval", str(root), "--answers", str(questions), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "right" in done.stdout and "abstained" in done.stdout
    report = json.loads((tmp_path / "out" / "answers.json").read_text())
    assert report["n"] == 2 and report["wrong"] == 0.0
    assert (tmp_path / "out" / "risk_coverage.png").stat().st_size > 1000
    svg = (tmp_path / "out" / "risk_coverage.svg").read_text()  # titled, its point marked
    assert "risk and coverage on questions.yaml</title>" in svg
    assert f"this bot (threshold {report['threshold']:g}): answers 50%, wrong 0.0%" in svg


async def test_a_model_that_declines_is_answered_in_the_bots_own_words(
        runtime: BotRuntime) -> None:
    """A model's decline may echo its instructions ("connect the customer with a human
    agent"); the customer gets the bot's fallback message instead, as a fallback turn; or,
    when the answer decision chose the passage, the passage's own answer."""
    async with running_stand_in() as stand_in:
        stand_in.pieces = ["I'm sorry, I don't have information about that.",
                           " Would you like me to connect the customer with a human agent?"]
        reply = await _generated(runtime, stand_in.url, "I forgot the PIN of my card",
                                 decided=False)
        decided = await _generated(runtime, stand_in.url, "I forgot the PIN of my card")
        assert len(stand_in.requests) == 2  # the model was asked both times
    assert reply.kind == "fallback" and reply.text == runtime.bot.config.fallback.message
    assert "customer" not in reply.text and not reply.citations
    assert decided.kind == "faq" and "Reset PIN" in decided.text
    assert [c.passage_id for c in decided.citations] == ["pin-reset"]


async def _generated(runtime: BotRuntime, url: str, question: str, *,
                     decided: bool = True) -> BotReply:
    """The FAQ answer to ``question`` generated by the model server at ``url``."""
    config = runtime.bot.config
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, exact_answer_threshold=1.0))  # every answer generated
    assert runtime.knowledge is not None
    answerer = FaqAnswerer(config, runtime.knowledge, Generator(remote(url), None), None)
    hits = runtime.knowledge.search(question, 3)
    session = Session(key="k", channel="rest", sender="s", started_at=0.0, updated_at=0.0)
    stream = await answerer.answer(session, question, hits, decided=decided)
    assert stream is not None
    return await stream.result()


async def test_a_generated_answer_that_invents_or_echoes_is_never_shown(
        runtime: BotRuntime) -> None:
    """What the model says must be in the passages it cites: an invented amount, a place
    nobody mentioned, the entry's question echoed as a title, or the question handed back
    are replaced by the passage's own answer, and the turn records why."""
    cases = {
        "invents a number": ["You can reset your PIN for £25 in the app. [pin-reset]"],
        "invents a name": ["Open the app, go to Card settings in Frankfurt. [pin-reset]"],
        "echoes the title": ["How do I reset my PIN?: Open the app and choose Reset PIN. "
                             "[pin-reset]"],
        "hands the question back": ["Yes, you can reset your PIN of your card? [pin-reset]"],
    }
    async with running_stand_in() as stand_in:
        replies = {}
        for case, pieces in cases.items():
            stand_in.pieces = pieces
            replies[case] = await _generated(runtime, stand_in.url, "can I reset my PIN of my card")
        stand_in.pieces = ["Open the app, go to Card settings and choose Reset PIN. [pin-reset]"]
        faithful = await _generated(runtime, stand_in.url, "can I reset my PIN of my card")
    problems = {case: (r.decision or {}).get("generated_replaced") for case, r in replies.items()}
    assert problems == {"invents a number": ["number:25"], "invents a name": ["name:frankfurt"],
                        "echoes the title": ["echo"], "hands the question back": ["restates"]}
    for reply in replies.values():
        assert reply.kind == "faq" and reply.text.startswith("Open the app, go to Card settings")
        assert [c.passage_id for c in reply.citations] == ["pin-reset"]
    assert faithful.kind == "generated" and faithful.decision is None


PLAIN_FAQ = "\n".join(
    f'{{"id": "{id_}", "question": "{question}", "answer": "{answer}"}}'
    for id_, question, answer in PLAIN) + "\n"


async def test_a_plain_faq_is_answered_by_a_decision_learned_from_its_knowledge(
        make_bot: MakeBot) -> None:
    root = make_bot(BOT.replace("faq/main.yaml", "faq/plain.jsonl"),
                    files={"faq/plain.jsonl": PLAIN_FAQ})
    bot = load_bot(root)
    details = {r.step: r.detail for r in train(bot, progress=False)}
    said = details["answer policy"]
    assert said.startswith("learned from 186 questions (10 entry questions, 20 reordered "
                           "entry questions, 30 uncovered, 126 off-topic)")
    assert "wrongly (target at most 5%)" in said and "faq.answer_threshold" not in said
    loaded = BotRuntime.load(bot)
    try:
        answer = await ask(loaded, "I forgot my PIN, how can I set a new one?")
        assert answer.decision is not None and answer.citations[0].passage_id == "pin"
        stranger = await ask(loaded, "What's the weather like in Paris tomorrow?")
        assert not stranger.citations and stranger.kind != "faq"
    finally:
        await loaded.close()


def test_bot_train_says_plainly_when_it_cannot_learn_a_decision(make_bot: MakeBot) -> None:
    root = make_bot(BOT.replace("faq/main.yaml", "faq/plain.jsonl"),
                    files={"faq/plain.jsonl": "\n".join(PLAIN_FAQ.splitlines()[:4]) + "\n"})
    said = {r.step: r.detail for r in train(load_bot(root), progress=False)}["answer policy"]
    assert said.startswith("no learned decision: only 4 questions with a right answer")
    assert "answering by faq.answer_threshold alone" in said
