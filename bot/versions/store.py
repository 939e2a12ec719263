"""The versions of a bot's trained artefacts on disk: list, add, keep, serve, roll back, copy.

``bot train`` trains a *candidate* (``.bot/candidate``, seeded with the served version's
artefacts so that what did not change is not trained again); the gate
(:mod:`bot.versions.gate`) promotes it here only when it is not worse. Layout under the
build folder::

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

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.build import train
from bot.definition.config import (
    BUILD_DIR,
    CURRENT_FILE,
    VERSIONS_DIR,
    BotDefinition,
    served_folder,
    served_version,
)
from bot.definition.loader import load_bot
from bot.errors import BotError
from retrieval.artifacts import write_text_atomic

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


def write_json(path: Path, data: Any) -> None:
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


def version_definition(version: Version, work: Path) -> BotDefinition:
    """Version ``version`` as it was trained: its own sources (copied to ``work``, where it
    may write) with its artefacts."""
    source = work / "bot"
    shutil.copytree(version.folder / SOURCE, source)
    return dataclasses.replace(load_bot(source), artefacts=version.folder)


def promote(bot: BotDefinition, candidate: Path, info: dict[str, Any]) -> int:
    """Move the candidate into ``versions/N+1``, serve it, drop the oldest beyond ``keep``."""
    root = versions_dir(bot)
    root.mkdir(parents=True, exist_ok=True)
    number = max((v.number for v in list_versions(bot)), default=0) + 1
    write_json(candidate / INFO, {"number": number, **info})
    os.replace(candidate, root / str(number))
    set_current(bot, number)
    keep = bot.config.versions.keep
    for old in list_versions(bot)[:-keep] if keep else []:
        if not old.current:
            shutil.rmtree(old.folder, ignore_errors=True)
    return number


def _differences(source: Path, root: Path) -> tuple[dict[Path, Path], dict[Path, Path],
                                                  list[Path]]:
    """The files of a version's ``source`` snapshot, the bot folder's own files, and the
    relative paths where they differ."""
    wanted = {p.relative_to(source): p for p in _source_files(source)}
    present = {p.relative_to(root): p for p in _source_files(root)}
    changed = sorted(rel for rel in set(wanted) | set(present)
                     if rel not in wanted or rel not in present
                     or wanted[rel].read_bytes() != present[rel].read_bytes())
    return wanted, present, changed


def refused_candidate(bot: BotDefinition) -> dict[str, Any] | None:
    """The ``version.json`` of the candidate the gate refused, while it is kept."""
    try:
        info = json.loads((bot.build_dir / CANDIDATE / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("refused") else None


def promote_refused(bot: BotDefinition) -> int:
    """Serve the candidate the gate refused, on purpose; its version number."""
    info = refused_candidate(bot)
    folder = bot.build_dir / CANDIDATE
    if info is None:
        raise BotError("no refused candidate to promote (`bot train` keeps the last one it "
                       f"refused in {bot.shown(folder)})")
    if info.get("served") != served_version(bot.build_dir):
        raise BotError(f"the candidate was measured against version {info.get('served')}, "
                       f"and version {served_version(bot.build_dir)} is served now: run "
                       "`bot train` again")
    changed = _differences(folder / SOURCE, bot.root)[2]
    if changed:
        raise BotError("the bot's files changed since the candidate was trained ("
                       + ", ".join(map(str, changed[:5])) + "): run `bot train` again")
    reason = f"promoted by hand over the gate's refusal ({info['refused']})"
    return promote(bot, folder, {**info, "refused": None, "reason": reason,
                                 "previous": info.get("served")})


@dataclass(frozen=True)
class Restored:
    """What a rollback did to the bot's own files (paths relative to the bot folder)."""

    written: list[str]  # brought back as the version had them (changed or missing)
    removed: list[str]  # not in the version: moved out of the bot folder
    backup: Path | None  # where the files replaced or removed went


def restore_sources(bot: BotDefinition, version: Version) -> Restored:
    """Make the bot folder's own files those ``version`` was trained from; the files this
    replaces or removes are moved to ``.bot/backups/<time>/`` first."""
    source = version.folder / SOURCE
    if not source.is_dir():
        return Restored([], [], None)
    wanted, present, changed = _differences(source, bot.root)
    if not changed:
        return Restored([], [], None)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    backup = bot.build_dir / BACKUPS / stamp
    for rel in changed:
        if rel in present:
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(present[rel], backup / rel)
        if rel in wanted:
            (bot.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wanted[rel], bot.root / rel)
    return Restored([str(r) for r in changed if r in wanted],
                    [str(r) for r in changed if r not in wanted],
                    backup if any(r in present for r in changed) else None)


def rollback(bot: BotDefinition, number: int | None = None) -> tuple[Version, Restored]:
    """Serve version ``number`` (default: the one before the served one) and restore the
    bot's files it was trained from. Returns the version and what changed in the files."""
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
