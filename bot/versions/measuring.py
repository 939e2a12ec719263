"""A version on the gate's yardstick: the held-out questions, the review marks and the
conversation tests, with what it answered to each, so that a refusal can say what got worse
(:mod:`.explain`).

The details of a measurement are kept in the version's folder (``gate.json``) beside its
scores (``version.json``); they compare only on the same yardstick (its digest).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.definition.config import BotDefinition
from bot.errors import BotError, RetrievalError, library_errors
from bot.evaluation.answers import (
    NONE,
    AnswerCase,
    answered_with,
    ask_all,
    load_answer_cases,
    outcome,
)
from bot.evaluation.conversations import (
    StepOutcome,
    TestReport,
    isolated,
    load_conversations,
    run_conversations,
)
from bot.learning.marks import Mark, load_marks, review_marks
from bot.runtime import BotRuntime
from bot.versions.store import Scores, write_json
from foundation.messages import BotReply
from retrieval.artifacts import digest
from retrieval.index import FaqIndex

DEFAULT_ANSWERS = "eval/answers.yaml"
DETAILS = "gate.json"
SHOWN_CHARS = 240  # of a reply, in the details


@dataclass(frozen=True)
class Measured:
    """Scores, and per question and per failed test what the version answered.

    ``answers``: case id -> ``{"question", "outcome", "reply", "entries"}``; ``tests``:
    ``"file: name"`` of each failed conversation -> its failed steps ``{"step", "user",
    "problems", "reply", "entries", "abstains", "contradicted"}`` (``abstains``: the step
    expects the bot not to know; ``contradicted``: and only knowledge new in this version
    answered)."""

    scores: Scores
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        write_json(folder / DETAILS, {"yardstick": self.scores.yardstick,
                                      "answers": self.answers, "tests": self.tests})

    @classmethod
    def load(cls, folder: Path, scores: Scores) -> Measured | None:
        """The details saved with ``scores``, when they are there and of its yardstick."""
        try:
            data = json.loads((folder / DETAILS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("yardstick") != scores.yardstick:
            return None
        return cls(scores, dict(data.get("answers") or {}), dict(data.get("tests") or {}))


@dataclass(frozen=True)
class Yardstick:
    """What versions are measured on: held-out questions, review marks, conversation tests
    (each None where the bot has none)."""

    answers: Path | None
    tests: Path | None
    marks: Path | None = None
    reviewed: tuple[Mark, ...] = ()  # the review page's marks (the session store's)

    def digest(self) -> str:
        files = [f for f in (self.answers, self.marks) if f] + \
            (sorted(self.tests.glob("*.y*ml")) if self.tests else [])
        reviewed = [["review marks", repr(self.reviewed)]] if self.reviewed else []
        return digest([[f.name, f.read_text(encoding="utf-8")] for f in files] + reviewed)

    def cases(self) -> list[AnswerCase]:
        """The held-out questions, then one per review mark that says what is right (the
        file's, then the review page's)."""
        cases = load_answer_cases(self.answers) if self.answers else []
        marks = [*(load_marks(self.marks) if self.marks else []), *self.reviewed]
        for n, mark in enumerate(marks):
            if mark.expected:
                note = f"marked {mark.mark}" + (f" by {mark.by}" if mark.by else "")
                cases.append(AnswerCase(f"mark-{n + 1}", (mark.question,), (mark.expected,),
                                        note))
        return cases


def yardstick(bot: BotDefinition) -> Yardstick:
    """The bot's held-out questions, review marks and conversation tests, where they exist."""
    gate = bot.config.versions.gate
    answers = bot.path(gate.answers) if gate.answers else bot.root / DEFAULT_ANSWERS
    if gate.answers and not answers.is_file():
        raise BotError(f"versions.gate.answers: no such file: {bot.shown(answers)}")
    tests, marks = bot.path(gate.tests), bot.path(gate.marks)
    return Yardstick(answers if answers.is_file() else None,
                     tests if tests.is_dir() and any(tests.glob("*.y*ml")) else None,
                     marks if marks.is_file() else None, tuple(review_marks(bot)))


def entry_ids(artefacts: Path) -> set[str]:
    """The FAQ entries in the trained index in ``artefacts`` (none when it has none)."""
    try:
        with library_errors():
            return {p.id for p in FaqIndex.load(artefacts / "faq_index").passages}
    except RetrievalError:
        return set()


def _shares(outcomes: list[str]) -> tuple[float, float, float]:
    n = max(1, len(outcomes))
    count = Counter(outcomes)
    return (round(count["right"] / n, 4), round(count["wrong"] / n, 4),
            round((count["abstained"] + count["clarified"]) / n, 4))


def _entries(reply: BotReply | None, links: dict[str, str]) -> list[str]:
    return sorted(set().union(*answered_with(reply, links))) if reply is not None else []


def _shown(reply: BotReply | None) -> str:
    text = " ".join((reply.text if reply is not None else "").split())
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def measure(bot: BotDefinition, stick: Yardstick, *,
            known: set[str] | None = None) -> Measured:
    """Ask the held-out questions and run the conversation tests against ``bot`` (its
    artefacts as they are), with a throw-away session store.

    ``known``: the entries the served version has. A question the yardstick says nothing
    answers, answered with entries that are new in ``bot``, counts as abstained, and a
    conversation test step expecting the bot to abstain that such an entry answers does not
    fail: the yardstick was written before that knowledge existed."""
    cases = stick.cases()
    conversations = load_conversations(stick.tests) if stick.tests else []
    links = {i.name: i.faq for i in bot.config.intents if i.faq}
    new = entry_ids(bot.artefacts_dir) - known if known is not None else set()

    def by_new(reply: BotReply) -> bool:
        """The reply answers only with entries new in ``bot``."""
        given = {g for g in _entries(reply, links) if not g.startswith("intent:")}
        return bool(given) and given <= new

    def judged(case: AnswerCase, reply: BotReply) -> str:
        unknown_then = all(NONE in part for part in case.expect) and by_new(reply)
        return "abstained" if unknown_then else outcome(case, reply, links)

    def contradicted(step: StepOutcome) -> bool:
        return bool(step.step.abstains) and step.reply is not None and by_new(step.reply)

    def failed(report: TestReport) -> dict[str, list[dict[str, Any]]]:
        """Failed conversations, but not one failing only where it expected the bot to
        abstain and new knowledge answered (the test predates that knowledge)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for conversation, steps in report.conversations().items():
            bad = [s for s in steps if not s.passed]
            if any(not contradicted(s) for s in bad):
                found[f"{conversation.file}: {conversation.name}"] = [{
                    "step": s.index + 1, "user": s.step.user, "problems": list(s.problems),
                    "reply": _shown(s.reply), "entries": _entries(s.reply, links),
                    "abstains": bool(s.step.abstains), "contradicted": contradicted(s)}
                    for s in bad]
        return found

    with tempfile.TemporaryDirectory(prefix="bot-gate-") as tmp:
        runtime = BotRuntime.load(isolated(bot, Path(tmp)))

        async def run() -> tuple[list[BotReply], TestReport]:
            try:
                replies = await ask_all(runtime, cases) if cases else []
                return replies, await run_conversations(runtime, conversations)
            finally:
                await runtime.close()

        replies, report = asyncio.run(run())
    answered = {case.id: {"question": case.turns[-1], "outcome": judged(case, reply),
                          "reply": _shown(reply), "entries": _entries(reply, links)}
                for case, reply in zip(cases, replies, strict=True)}
    outcomes = [str(a["outcome"]) for a in answered.values()]
    right, wrong, abstained = _shares(outcomes) if cases else (None, None, None)
    failures = failed(report)
    scores = Scores(right, wrong, abstained, len(cases), len(conversations), tuple(failures),
                    stick.digest())
    return Measured(scores, answered, failures)
