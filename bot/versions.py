"""Versions of a bot's trained artefacts, and the gate a new one passes before it is served.

``bot train`` trains a *candidate* (``.bot/candidate``, seeded with the served version's
artefacts so that what did not change is not trained again), measures it and the served
version on the same yardstick (held-out questions and conversation tests, see
:class:`~bot.definition.config.GateSettings`) and promotes it only when it is not worse.
Layout under the build folder::

    candidate/                  the version in training; kept after a refusal, for a look
    versions/N/                 faq_index, classifier, sentiment, adapter, answer_policy
    versions/N/source/          the bot's own files it was trained from (bot.yaml, faq/, ...)
    versions/N/version.json     when, what changed, the scores, why it was promoted
    versions/current            the number being served (``bot serve`` follows it)

Before the first versioned training the artefacts live in ``.bot/`` itself; they seed the
first candidate. A version carries its sources so that it can be measured, and restored by
``bot rollback``, after the bot's files have changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.build import StepResult, train
from bot.definition.config import (
    BUILD_DIR,
    CURRENT_FILE,
    VERSIONS_DIR,
    BotDefinition,
    served_folder,
    served_version,
)
from bot.definition.loader import load_bot
from bot.errors import BotError, NotTrainedError
from bot.errors import RetrievalError as ArtefactError
from retrieval.artifacts import digest, write_text_atomic
from retrieval.errors import RetrievalError
from retrieval.index import FaqIndex

if TYPE_CHECKING:
    from bot.evaluation.answers import AnswerCase
    from bot.evaluation.conversations import TestReport
    from bot.messages import BotReply

log = logging.getLogger(__name__)

ARTEFACTS = ("faq_encoder", "faq_index", "classifier", "sentiment", "adapter", "answer_policy")
CANDIDATE = "candidate"
SOURCE = "source"
INFO = "version.json"
BACKUPS = "backups"
# the bot folder's own files a version keeps; not: what it builds, the yardstick, the data
# it learns from (bot/learning)
NOT_SOURCE = {BUILD_DIR, "tests", "eval", "conversations", "suggestions", "history",
              "__pycache__"}
DEFAULT_ANSWERS = "eval/answers.yaml"


@dataclass(frozen=True)
class Scores:
    """A version on the yardstick: shares of held-out questions answered right / wrong /
    abstained (None without a question file) and the conversation tests it passes."""

    right: float | None
    wrong: float | None
    abstained: float | None
    questions: int
    tests: int
    tests_failed: tuple[str, ...]
    yardstick: str  # digest of the question file and tests: scores compare only when equal

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        return cls(data["right"], data["wrong"], data["abstained"], data["questions"],
                   data["tests"], tuple(data["tests_failed"]), data["yardstick"])

    def line(self) -> str:
        shares = ("no held-out questions" if self.right is None else
                  f"right {self.right:.1%}, wrong {self.wrong:.1%}, abstained "
                  f"{self.abstained:.1%} of {self.questions} questions")
        return f"{shares}; {self.tests - len(self.tests_failed)}/{self.tests} tests pass"


@dataclass(frozen=True)
class Version:
    """A promoted version in ``.bot/versions``."""

    number: int
    folder: Path
    info: dict[str, Any]
    current: bool

    @property
    def scores(self) -> Scores | None:
        raw = self.info.get("scores")
        return Scores.from_dict(raw) if raw else None


@dataclass(frozen=True)
class Outcome:
    """What ``bot train`` did: promoted (the version served now), refused, or up to date."""

    state: str  # "promoted" | "refused" | "up to date"
    version: int | None
    reason: str
    steps: list[StepResult]
    candidate: Scores | None = None
    served: Scores | None = None


def versions_dir(bot: BotDefinition) -> Path:
    return bot.build_dir / VERSIONS_DIR


def list_versions(bot: BotDefinition) -> list[Version]:
    """Every promoted version, oldest first."""
    root, current = versions_dir(bot), served_version(bot.build_dir)
    found: list[Version] = []
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and folder.name.isdigit():
            try:
                info = json.loads((folder / INFO).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                info = {"damaged": True}
            found.append(Version(int(folder.name), folder, info, int(folder.name) == current))
    return sorted(found, key=lambda v: v.number)


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def set_current(bot: BotDefinition, number: int) -> None:
    """Serve version ``number`` (atomically: a running ``bot serve`` switches to it)."""
    write_text_atomic(versions_dir(bot) / CURRENT_FILE, f"{number}\n")


def _source_files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and parts[0] not in NOT_SOURCE \
                and not any(p.startswith(".") for p in parts):
            yield path


def snapshot_sources(root: Path, target: Path) -> None:
    """Copy the bot folder's own files (not what it builds or learns from) to ``target``."""
    for path in _source_files(root):
        copy = target / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)


def prepare_candidate(bot: BotDefinition) -> BotDefinition:
    """A fresh candidate folder seeded with the served artefacts; ``bot`` training into it."""
    folder = bot.build_dir / CANDIDATE
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    served = served_folder(bot.build_dir)
    for name in ARTEFACTS:
        if (served / name).is_dir():
            shutil.copytree(served / name, folder / name)
    snapshot_sources(bot.root, folder / SOURCE)
    return dataclasses.replace(bot, artefacts=folder)


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
    from bot.evaluation.answers import NONE, answered_with, ask_all, load_answer_cases, outcome
    from bot.evaluation.conversations import isolated, load_conversations, run_conversations
    from bot.runtime import BotRuntime

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


def version_definition(version: Version, work: Path) -> BotDefinition:
    """Version ``version`` as it was trained: its own sources (copied to ``work``, where it
    may write) with its artefacts."""
    source = work / "bot"
    shutil.copytree(version.folder / SOURCE, source)
    return dataclasses.replace(load_bot(source), artefacts=version.folder)


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
    _write_json(version.folder / INFO, info)
    return scores


def promote(bot: BotDefinition, candidate: Path, info: dict[str, Any]) -> int:
    """Move the candidate into ``versions/N+1``, serve it, drop the oldest beyond ``keep``."""
    root = versions_dir(bot)
    root.mkdir(parents=True, exist_ok=True)
    number = max((v.number for v in list_versions(bot)), default=0) + 1
    _write_json(candidate / INFO, {"number": number, **info})
    os.replace(candidate, root / str(number))
    set_current(bot, number)
    keep = bot.config.versions.keep
    for old in list_versions(bot)[:-keep] if keep else []:
        if not old.current:
            shutil.rmtree(old.folder, ignore_errors=True)
    return number


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
    except (NotTrainedError, ArtefactError) as exc:  # trained by an older release
        after = measure(candidate, answers, tests, known=known)
        reason = (f"the served version {served_number} cannot run on this release ({exc}): "
                  "nothing to compare with")
        number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after),
                                       "reason": reason, "previous": served_number})
        return Outcome("promoted", number, reason, steps, after)
    after = measure(candidate, answers, tests, known=known)
    ok, reason = judge(after, before, bot.config.versions.gate.margin)
    if not ok and gate:
        _write_json(folder / INFO, {**info, "scores": dataclasses.asdict(after),
                                    "refused": reason})
        return Outcome("refused", served_number, reason, steps, after, before)
    if not ok:
        reason = f"promoted without the gate (--no-gate): {reason}"
    number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after),
                                   "reason": reason, "previous": served_number})
    return Outcome("promoted", number, reason, steps, after, before)


def restore_sources(bot: BotDefinition, version: Version) -> list[str]:
    """Make the bot folder's own files those ``version`` was trained from; the files this
    replaces or removes are moved to ``.bot/backups/<time>/`` first. Returns what changed."""
    source = version.folder / SOURCE
    if not source.is_dir():
        return []
    wanted = {p.relative_to(source): p for p in _source_files(source)}
    present = {p.relative_to(bot.root): p for p in _source_files(bot.root)}
    changed = sorted(str(rel) for rel in set(wanted) | set(present)
                     if rel not in wanted or rel not in present
                     or wanted[rel].read_bytes() != present[rel].read_bytes())
    if not changed:
        return []
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    backup = bot.build_dir / BACKUPS / stamp
    for rel in map(Path, changed):
        if rel in present:
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(present[rel], backup / rel)
        if rel in wanted:
            (bot.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wanted[rel], bot.root / rel)
    return changed


def rollback(bot: BotDefinition, number: int | None = None) -> tuple[Version, list[str]]:
    """Serve version ``number`` (default: the one before the served one) and restore the
    bot's files it was trained from. Returns the version and the files restored."""
    versions = list_versions(bot)
    current = served_version(bot.build_dir)
    if number is None:
        older = [v for v in versions if current is not None and v.number < current]
        if not older:
            raise BotError("no earlier version to roll back to"
                           + (f" (serving version {current})" if current else
                              " (no versions yet: run `bot train`)"))
        target = older[-1]
    else:
        match = [v for v in versions if v.number == number]
        if not match:
            known = ", ".join(str(v.number) for v in versions) or "none"
            raise BotError(f"no version {number} in {bot.shown(versions_dir(bot))} "
                           f"(versions: {known})")
        target = match[0]
    restored = restore_sources(bot, target)
    set_current(bot, target.number)
    log.info("serving version %d", target.number)
    return target, restored


def trained_copy(bot: BotDefinition, *, progress: bool = False) -> BotDefinition:
    """``bot`` trained as its files are now without touching a promoted version: in place
    before the first version, otherwise in the candidate folder (not promoted)."""
    if served_version(bot.build_dir) is None:
        train(bot, progress=progress)
        return bot
    candidate = prepare_candidate(bot)
    train(candidate, progress=progress)
    return candidate
