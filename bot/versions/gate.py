"""The gate a new version passes before it is served: train a candidate, measure it and the
served version on the same yardstick, promote it only when it is not worse.

The yardstick is the held-out questions and the conversation tests (see
:class:`~bot.definition.config.GateSettings`); the versions themselves live in the versions
folder (:mod:`bot.versions.store`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.build import StepResult, train
from bot.definition.config import BotDefinition, served_version
from bot.errors import BotError, NotTrainedError, RetrievalError, library_errors
from bot.evaluation.answers import (
    NONE,
    AnswerCase,
    answered_with,
    ask_all,
    load_answer_cases,
    outcome,
)
from bot.evaluation.conversations import (
    TestReport,
    isolated,
    load_conversations,
    run_conversations,
)
from bot.runtime import BotRuntime
from bot.versions.store import (
    INFO,
    Scores,
    Version,
    list_versions,
    prepare_candidate,
    promote,
    version_definition,
    write_json,
)
from foundation.messages import BotReply
from retrieval.artifacts import digest
from retrieval.index import FaqIndex

DEFAULT_ANSWERS = "eval/answers.yaml"


@dataclass(frozen=True)
class Outcome:
    """What ``bot train`` did: promoted (the version served now), refused, or up to date."""

    state: str  # "promoted" | "refused" | "up to date"
    version: int | None
    reason: str
    steps: list[StepResult]
    candidate: Scores | None = None
    served: Scores | None = None


def yardstick(bot: BotDefinition) -> tuple[Path | None, Path | None]:
    """The held-out question file and the conversation-test folder, where they exist."""
    gate = bot.config.versions.gate
    answers = bot.path(gate.answers) if gate.answers else bot.root / DEFAULT_ANSWERS
    if gate.answers and not answers.is_file():
        raise BotError(f"versions.gate.answers: no such file: {bot.shown(answers)}")
    tests = bot.path(gate.tests)
    return (answers if answers.is_file() else None,
            tests if tests.is_dir() and any(tests.glob("*.y*ml")) else None)


def yardstick_digest(answers: Path | None, tests: Path | None) -> str:
    files = ([answers] if answers else []) + (sorted(tests.glob("*.y*ml")) if tests else [])
    return digest([[f.name, f.read_text(encoding="utf-8")] for f in files])


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


def measure(bot: BotDefinition, answers: Path | None, tests: Path | None, *,
            known: set[str] | None = None) -> Scores:
    """Ask the held-out questions and run the conversation tests against ``bot`` (its
    artefacts as they are), with a throw-away session store.

    ``known``: the entries the served version has. A question the yardstick says nothing
    answers, answered with entries that are new in ``bot``, counts as abstained, and a
    conversation test step expecting the bot to abstain that such an entry answers does not
    fail: the yardstick was written before that knowledge existed."""
    cases = load_answer_cases(answers) if answers else []
    conversations = load_conversations(tests) if tests else []
    links = {i.name: i.faq for i in bot.config.intents if i.faq}
    new = entry_ids(bot.artefacts_dir) - known if known is not None else set()

    def by_new(reply: BotReply) -> bool:
        """The reply answers only with entries new in ``bot``."""
        given = {g for g in set().union(*answered_with(reply, links))
                 if not g.startswith("intent:")}
        return bool(given) and given <= new

    def judged(case: AnswerCase, reply: BotReply) -> str:
        unknown_then = all(NONE in part for part in case.expect) and by_new(reply)
        return "abstained" if unknown_then else outcome(case, reply, links)

    def failed(report: TestReport) -> list[str]:
        """Failed conversations, but not one failing only where it expected the bot to
        abstain and new knowledge answered (the test predates that knowledge)."""
        return [f"{c.file}: {c.name}" for c, steps in report.conversations().items()
                if any(not o.passed and not (o.step.abstains and o.reply is not None
                                             and by_new(o.reply)) for o in steps)]

    with tempfile.TemporaryDirectory(prefix="bot-gate-") as tmp:
        runtime = BotRuntime.load(isolated(bot, Path(tmp)))

        async def run() -> tuple[list[str], list[str]]:
            try:
                replies = await ask_all(runtime, cases) if cases else []
                report = await run_conversations(runtime, conversations)
                return ([judged(c, r) for c, r in zip(cases, replies, strict=True)],
                        failed(report))
            finally:
                await runtime.close()

        outcomes, failures = asyncio.run(run())
    right, wrong, abstained = _shares(outcomes) if cases else (None, None, None)
    return Scores(right, wrong, abstained, len(cases), len(conversations), tuple(failures),
                  yardstick_digest(answers, tests))


def judge(candidate: Scores, served: Scores, margin: float) -> tuple[bool, str]:
    """Promote when the candidate is at most ``margin`` worse on right and on wrong and
    fails no conversation test the served version passes."""
    problems: list[str] = []
    if candidate.right is not None and served.right is not None:
        if candidate.right < served.right - margin:
            problems.append(f"answers right {candidate.right:.1%} < {served.right:.1%} "
                            f"- {margin:.1%}")
        if candidate.wrong is not None and served.wrong is not None \
                and candidate.wrong > served.wrong + margin:
            problems.append(f"answers wrong {candidate.wrong:.1%} > {served.wrong:.1%} "
                            f"+ {margin:.1%}")
    newly = sorted(set(candidate.tests_failed) - set(served.tests_failed))
    if newly:
        problems.append(f"fails {len(newly)} conversation test(s) the served version passes: "
                        + "; ".join(newly[:3]))
    if problems:
        return False, "; ".join(problems)
    return True, "not worse than the served version"


def served_scores(bot: BotDefinition, version: Version, answers: Path | None,
                  tests: Path | None) -> Scores:
    """The served version's scores on today's yardstick: remembered, or measured now."""
    wanted = yardstick_digest(answers, tests)
    known = version.scores
    if known is not None and known.yardstick == wanted:
        return known
    with tempfile.TemporaryDirectory(prefix="bot-served-") as tmp:
        scores = measure(version_definition(version, Path(tmp)), answers, tests)
    info = {**version.info, "scores": dataclasses.asdict(scores)}
    write_json(version.folder / INFO, info)
    return scores


def _changes(steps: list[StepResult]) -> list[str]:
    return [s.step for s in steps if s.rebuilt]


def train_version(bot: BotDefinition, *, force: bool = False, gate: bool = True,
                  progress: bool = True,
                  report: Callable[[StepResult], None] = lambda _: None) -> Outcome:
    """Train a candidate and promote it if it passes the gate (``gate=False``: always)."""
    served_number = served_version(bot.build_dir)
    candidate = prepare_candidate(bot)
    steps = train(candidate, force=force, progress=progress, report=report)
    changed = _changes(steps)
    folder = candidate.artefacts_dir
    if served_number is not None and not changed:
        shutil.rmtree(folder, ignore_errors=True)
        return Outcome("up to date", served_number, "nothing changed", steps)
    info: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "changed": changed,
        "steps": {s.step: s.detail for s in steps},
    }
    versions = {v.number: v for v in list_versions(bot)}
    served = versions.get(served_number) if served_number is not None else None
    if served is None:
        number = promote(bot, folder, {**info, "scores": None, "reason": "first version"})
        return Outcome("promoted", number, "first version: nothing to compare with", steps)
    answers, tests = yardstick(bot)
    known = entry_ids(served.folder)
    try:
        before = served_scores(bot, served, answers, tests)
    except (NotTrainedError, RetrievalError) as exc:  # trained by an older release
        after = measure(candidate, answers, tests, known=known)
        reason = (f"the served version {served_number} cannot run on this release ({exc}): "
                  "nothing to compare with")
        number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after),
                                       "reason": reason, "previous": served_number})
        return Outcome("promoted", number, reason, steps, after)
    after = measure(candidate, answers, tests, known=known)
    ok, reason = judge(after, before, bot.config.versions.gate.margin)
    if not ok and gate:
        write_json(folder / INFO, {**info, "scores": dataclasses.asdict(after),
                                   "refused": reason})
        return Outcome("refused", served_number, reason, steps, after, before)
    if not ok:
        reason = f"promoted without the gate (--no-gate): {reason}"
    number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after),
                                   "reason": reason, "previous": served_number})
    return Outcome("promoted", number, reason, steps, after, before)
