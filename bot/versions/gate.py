"""The gate a new version passes before it is served: train a candidate, measure it and the
served version on the same yardstick, promote it only when it is not worse.

The yardstick is the held-out questions and the conversation tests (see
:class:`~bot.definition.config.GateSettings`, :mod:`bot.versions.measuring`); a refusal says
what got worse (:mod:`bot.versions.explain`); the versions themselves live in the versions
folder (:mod:`bot.versions.store`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.build import StepResult, train
from bot.definition.config import BotDefinition, served_version
from bot.errors import NotTrainedError, RetrievalError
from bot.learning.decisions import learned_sources
from bot.versions.explain import explain
from bot.versions.measuring import Measured, Yardstick, entry_ids, measure, yardstick
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


@dataclass(frozen=True)
class Outcome:
    """What ``bot train`` did: promoted (the version served now), refused, or up to date."""

    state: str  # "promoted" | "refused" | "up to date"
    version: int | None
    reason: str
    steps: list[StepResult]
    candidate: Scores | None = None
    served: Scores | None = None
    explanation: tuple[str, ...] = ()  # a refusal's: what got worse, and how to fix it


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


def served_scores(version: Version, stick: Yardstick) -> Measured:
    """The served version on today's yardstick: remembered, or measured now."""
    known = version.scores
    if known is not None and known.yardstick == stick.digest():
        remembered = Measured.load(version.folder, known)
        if remembered is not None:
            return remembered
    with tempfile.TemporaryDirectory(prefix="bot-served-") as tmp:
        measured = measure(version_definition(version, Path(tmp)), stick)
    write_json(version.folder / INFO, {**version.info,
                                       "scores": dataclasses.asdict(measured.scores)})
    measured.save(version.folder)
    return measured


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
    stick = yardstick(bot)
    known = entry_ids(served.folder)
    try:
        before = served_scores(served, stick)
    except (NotTrainedError, RetrievalError) as exc:  # trained by an older release
        after = measure(candidate, stick, known=known)
        after.save(folder)
        reason = (f"the served version {served_number} cannot run on this release ({exc}): "
                  "nothing to compare with")
        number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after.scores),
                                       "reason": reason, "previous": served_number})
        return Outcome("promoted", number, reason, steps, after.scores)
    after = measure(candidate, stick, known=known)
    after.save(folder)
    ok, reason = judge(after.scores, before.scores, bot.config.versions.gate.margin)
    if not ok and gate:
        why = tuple(explain(after, before, learned_sources(bot.root), bot.shown(bot.root)))
        write_json(folder / INFO, {**info, "scores": dataclasses.asdict(after.scores),
                                   "refused": reason, "explanation": list(why),
                                   "served": served_number})
        return Outcome("refused", served_number, reason, steps, after.scores, before.scores,
                       why)
    if not ok:
        reason = f"promoted without the gate (--no-gate): {reason}"
    number = promote(bot, folder, {**info, "scores": dataclasses.asdict(after.scores),
                                   "reason": reason, "previous": served_number})
    return Outcome("promoted", number, reason, steps, after.scores, before.scores)
