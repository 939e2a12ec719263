"""Conversation tests: YAML scripts of what users say and what the bot must do.

``<bot>/tests/*.yaml`` each hold a list of conversations (or a single one)::

    - name: card status end to end
      steps:
        - user: has my new card been sent out?
          intent: check_card_delivery       # the reply's intent
          kind: form                        # the reply's kind (faq, intent, form, handoff, ...)
                                            # or a list of kinds, any of which passes
          contains: last 4 digits           # text or list of texts, case-insensitive
          not_contains: [full card number]
          cites: card-not-arrived           # a passage id among the citations
          slots: {card_last4: "4821"}       # session slots after the turn (null: unset)
          handoff: false
          sentiment: negative
          abstains: true                    # says it doesn't know (fallback, handoff)

Each conversation talks to the real bot (its trained models, the full turn pipeline) as a new
user, against a fresh session store; variations are seeded so runs repeat.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.definition.config import BotDefinition
from bot.errors import BotError, ConfigError
from bot.runtime import BotRuntime
from bot.server.pipeline import TurnPipeline
from foundation.checks import check as field_check
from foundation.checks import non_empty
from foundation.messages import BotReply, UserMessage
from foundation.settings import Where, build
from retrieval.yamlio import load_yaml

Texts = str | tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """One user message and what must hold afterwards."""

    user: str = field_check(non_empty)
    intent: str | None = None
    kind: Texts | None = None  # one kind, or several any of which passes
    contains: Texts = ()
    not_contains: Texts = ()
    cites: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    handoff: bool | None = None
    sentiment: str | None = None
    abstains: bool | None = None  # the bot says it doesn't know (no answer, no citation)


ABSTAINING = frozenset({"fallback", "handoff"})


def abstained(reply: BotReply) -> bool:
    """The reply answers nothing: a fallback or a handoff, without citations."""
    return reply.kind in ABSTAINING and not reply.citations


@dataclass(frozen=True, eq=False)
class Conversation:
    """A named list of steps, run as one new user."""

    name: str = field_check(non_empty)
    steps: tuple[Step, ...] = field_check(non_empty)
    file: str = ""


@dataclass(frozen=True)
class StepOutcome:
    """One step's reply, what was wrong with it, and how long the turn took."""

    conversation: Conversation
    index: int
    step: Step
    reply: BotReply | None
    problems: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class TestReport:
    """Every step's outcome, grouped by conversation for the printed report."""

    outcomes: list[StepOutcome] = field(default_factory=list)

    def conversations(self) -> dict[Conversation, list[StepOutcome]]:
        grouped: dict[Conversation, list[StepOutcome]] = {}
        for outcome in self.outcomes:
            grouped.setdefault(outcome.conversation, []).append(outcome)
        return grouped

    @property
    def failed(self) -> list[Conversation]:
        return [c for c, steps in self.conversations().items()
                if not all(s.passed for s in steps)]

    def format(self) -> str:
        lines: list[str] = []
        for conversation, steps in self.conversations().items():
            ok = all(s.passed for s in steps)
            lines.append(f"{'PASS' if ok else 'FAIL'}  {conversation.file}: {conversation.name}")
            for outcome in steps:
                reply = outcome.reply
                said = reply.text.replace("\n", " ")[:90] if reply else "(no reply)"
                facts = f"[{reply.kind}, intent={reply.intent}]" if reply else ""
                mark = "ok " if outcome.passed else "ERR"
                lines.append(f"  {mark} {outcome.index + 1}. user: {outcome.step.user!r}")
                lines.append(f"        bot {facts}: {said}")
                lines.extend(f"        {line}" for p in outcome.problems
                             for line in p.splitlines())
        total = len(self.conversations())
        count = len(self.outcomes)
        passed = sum(o.passed for o in self.outcomes)
        lines.append(f"\n{total - len(self.failed)} of {total} conversations passed; "
                     f"{passed} of {count} steps passed")
        return "\n".join(lines)


def _texts(value: Texts) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def load_conversations(directory: Path, *, display: Callable[[Path], str] = str
                       ) -> list[Conversation]:
    """Every conversation in ``directory/*.yaml`` (sorted by file name)."""
    found: list[Conversation] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        shown = display(path)
        raw = load_yaml(path, display=shown)
        items = raw if isinstance(raw, list) else [raw]
        where = Where(shown)
        for i, item in enumerate(items):
            at = where.item(raw, i) if isinstance(raw, list) else where
            conversation = build(Conversation, item, at)
            found.append(dataclasses.replace(conversation, file=path.name))
    if not found:
        raise ConfigError("no conversation tests here (write tests/*.yaml)", file=str(directory))
    return found


def isolated(bot: BotDefinition, sessions: Path) -> BotDefinition:
    """``bot`` with a fresh SQLite session store under ``sessions`` and seeded variations."""
    config = bot.config
    store = dataclasses.replace(config.sessions, store="sqlite",
                                path=str(sessions / "sessions.sqlite3"))
    seed = config.dialogue.seed if config.dialogue.seed is not None else 0
    config = dataclasses.replace(config, sessions=store,
                                 dialogue=dataclasses.replace(config.dialogue, seed=seed))
    return dataclasses.replace(bot, config=config)


def check_step(step: Step, reply: BotReply, slots: dict[str, Any]) -> list[str]:
    """What in ``reply`` (and the slots after it) contradicts ``step``."""
    problems: list[str] = []

    def differ(what: str, expected: Any, actual: Any) -> None:
        problems.append(f"{what}:\n  - expected {expected!r}\n  + got      {actual!r}")

    if step.intent is not None and reply.intent != step.intent:
        differ("intent", step.intent, reply.intent)
    if step.kind is not None and reply.kind not in _texts(step.kind):
        differ("kind", step.kind, reply.kind)
    if step.handoff is not None and reply.handoff != step.handoff:
        differ("handoff", step.handoff, reply.handoff)
    if step.abstains is not None and abstained(reply) != step.abstains:
        differ("abstains", step.abstains, f"{reply.kind}: {reply.text[:80]!r}")
    if step.sentiment is not None and reply.sentiment != step.sentiment:
        differ("sentiment", step.sentiment, reply.sentiment)
    text = reply.text.lower()
    for wanted in _texts(step.contains):
        if wanted.lower() not in text:
            differ("reply contains", wanted, reply.text)
    for unwanted in _texts(step.not_contains):
        if unwanted.lower() in text:
            differ("reply does not contain", unwanted, reply.text)
    cited = [c.passage_id for c in reply.citations]
    if step.cites is not None and step.cites not in cited:
        differ("cites", step.cites, cited)
    for name, expected in step.slots.items():
        actual = slots.get(name)
        same = actual == expected or (actual is not None and expected is not None
                                      and str(actual) == str(expected))
        if not same:
            differ(f"slot {name}", expected, actual)
    return problems


async def run_conversations(runtime: BotRuntime, conversations: list[Conversation], *,
                            progress: Callable[[StepOutcome], None] = lambda _: None
                            ) -> TestReport:
    """Run each conversation as a new user through the full turn pipeline."""
    pipeline = TurnPipeline(runtime)
    report = TestReport()
    for number, conversation in enumerate(conversations):
        sender = f"conversation-test-{number}-{time.time_ns()}"
        for index, step in enumerate(conversation.steps):
            message = UserMessage(sender=sender, text=step.user, channel="rest")
            started = time.perf_counter()
            reply: BotReply | None = None
            try:
                reply = await pipeline.handle(message)
                session = await runtime.store.get(message.session_key, channel="rest",
                                                  sender=sender)
                problems = check_step(step, reply, session.slots)
            except BotError as exc:
                problems = [f"the turn failed: {type(exc).__name__}: {exc}"]
            outcome = StepOutcome(conversation, index, step, reply, tuple(problems),
                                  time.perf_counter() - started)
            report.outcomes.append(outcome)
            progress(outcome)
    return report
