"""Review marks: a person's verdict on an answer the bot gave, the loop's third input.

A team marks live answers (``eval/marks.yaml``, written by hand or by a review page)::

    - question: can I lower my daily cash withdrawal limit?
      mark: wrong                 # right | wrong | should_not_answer
      answer: card-limits         # with wrong: the entry that answers it (none: nothing does)
      answered: [age-requirement] # what the bot answered (with right: what stays right)
      by: Anna                    # who marked it, when (optional)
      at: 2026-12-07

A lead's marks from the review page (``/desk/review``) are ``review_mark`` events of the
session store (:func:`stored_marks`); the loop reads both (:func:`all_marks`).

Marks join the gate's held-out questions at the next ``bot train``
(:mod:`bot.versions.measuring`), so a candidate that answers a marked question wrongly again
is caught; and a wrong answer whose right entry is named becomes a reviewable suggestion:
the question as a new wording of that entry (:func:`alternatives_from_marks`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.definition.config import BotDefinition, typed_path
from bot.errors import ConfigError, SessionError, library_errors
from bot.learning.suggestions import Suggestion
from bot.sessions.events import REVIEW_MARK_EVENT
from bot.sessions.factory import open_session_store
from bot.sessions.store import SessionStore
from retrieval.yamlio import load_yaml

log = logging.getLogger(__name__)

MARKS = Path("eval") / "marks.yaml"
KINDS = ("right", "wrong", "should_not_answer")
NONE = "none"


@dataclass(frozen=True)
class Mark:
    """One marked answer: the question, the verdict, the entry that answers it (``none``:
    nothing should) and what the bot answered."""

    question: str
    mark: str
    answer: str | None = None
    answered: tuple[str, ...] = ()
    by: str = ""
    at: str = ""

    @property
    def expected(self) -> tuple[str, ...]:
        """The entries a right reply answers with (``("none",)``: the bot should abstain);
        empty when the mark says nothing about it (right, with nothing answered)."""
        if self.mark == "right":
            return self.answered
        if self.mark == "should_not_answer" or not self.answer or self.answer == NONE:
            return (NONE,)
        return (self.answer,)


def load_marks(path: Path) -> list[Mark]:
    """The marks in ``path`` (none when it does not exist); errors name the file and item."""
    if not path.is_file():
        return []
    shown = typed_path(path)
    with library_errors(file=shown):
        raw = load_yaml(path, display=shown)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("expected a list of marks ({question, mark, answer?, answered?})",
                          file=shown)
    marks: list[Mark] = []
    for n, item in enumerate(raw):
        where = f"[{n}]"
        line = getattr(item, "line", None)
        if not isinstance(item, dict):
            raise ConfigError("each mark must be a mapping", file=shown, path=where, line=line)
        question, kind = item.get("question"), item.get("mark")
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("needs 'question', the customer's message", file=shown,
                              path=f"{where}.question", line=line)
        if kind not in KINDS:
            raise ConfigError(f"'mark' must be one of {', '.join(KINDS)}", file=shown,
                              path=f"{where}.mark", line=line)
        answered = item.get("answered") or []
        if isinstance(answered, str):
            answered = [answered]
        if not isinstance(answered, list):
            raise ConfigError("'answered' must be a list of entry ids", file=shown,
                              path=f"{where}.answered", line=line)
        answer = item.get("answer")
        marks.append(Mark(" ".join(question.split()), str(kind),
                          str(answer) if answer is not None else None,
                          tuple(str(a) for a in answered), str(item.get("by") or ""),
                          str(item.get("at") or "")))
    return marks


def mark_of(data: Mapping[str, Any]) -> Mark | None:
    """The mark a ``review_mark`` event holds (None: cleared, or not a mark)."""
    question, kind = data.get("question"), data.get("mark")
    if not isinstance(question, str) or not question.strip() or kind not in KINDS:
        return None
    answer = data.get("answer")
    return Mark(" ".join(question.split()), str(kind), str(answer) if answer else None,
                tuple(str(a) for a in data.get("answered") or ()), str(data.get("by") or ""),
                str(data.get("at") or ""))


async def stored_marks(store: SessionStore, *, since: float = 0.0) -> dict[tuple[str, float],
                                                                           Mark]:
    """The review page's marks in ``store``: the latest per answer (conversation key, the
    answer's time), oldest answer first; an answer whose latest mark cleared it is left
    out."""
    latest: dict[tuple[str, float], Mark | None] = {}
    async for event in store.iter_events(since=since):
        if event["kind"] == REVIEW_MARK_EVENT:
            data = event["data"]
            latest[(event["key"], float(data.get("turn_ts") or 0))] = mark_of(data)
    return {k: m for k, m in sorted(latest.items(), key=lambda i: (i[0][1], i[0][0]))
            if m is not None}


def review_marks(bot: BotDefinition) -> list[Mark]:
    """The marks of the review page in the bot's session store (blocking; none when the
    store has never been written, or cannot be reached, which is logged)."""
    settings = bot.config.sessions
    if settings.store != "redis" and not bot.path(settings.path).is_file():
        return []

    async def read() -> list[Mark]:
        store = open_session_store(bot)
        try:
            return list((await stored_marks(store)).values())
        finally:
            await store.close()

    try:
        return asyncio.run(read())
    except SessionError as exc:
        log.warning("review marks in the session store not read: %s", exc)
        return []


def all_marks(bot: BotDefinition, path: Path) -> list[Mark]:
    """The marks in ``path`` (``eval/marks.yaml``), then the review page's."""
    return [*load_marks(path), *review_marks(bot)]


def knowledge_gaps(marks: Sequence[Mark]) -> list[str]:
    """The questions marked wrong that no entry answers: FAQ entries to write, each once
    ("should not have answered" marks are questions the bot is not for)."""
    return list(dict.fromkeys(m.question for m in marks
                              if m.mark == "wrong" and m.expected == (NONE,)))


def alternatives_from_marks(marks: Sequence[Mark], found: Sequence[Suggestion],
                            wordings: Mapping[str, set[str]]) -> list[Suggestion]:
    """``found`` with each question marked wrong, whose right entry is in ``wordings``
    (entry id -> its question and alternatives, lowercased) and not already one of its
    wordings, added as a new wording of that entry (to the mined ``alt-<entry>``
    suggestion, or a new one)."""
    wanted: dict[str, list[Mark]] = {}
    for mark in marks:
        known = wordings.get(str(mark.answer))
        if mark.mark == "wrong" and known is not None and mark.question.lower() not in known:
            wanted.setdefault(str(mark.answer), []).append(mark)
    result = list(found)
    for entry, given in wanted.items():
        questions = list(dict.fromkeys(m.question for m in given))
        examples = tuple({"question": m.question, "source": "review mark",
                          "mark": f"wrong (answered {', '.join(m.answered) or 'nothing'})"
                          + (f", by {m.by}" if m.by else "")} for m in given[:3])
        at = next((n for n, s in enumerate(result) if s.id == f"alt-{entry}"), None)
        if at is None:
            result.append(Suggestion(f"alt-{entry}", "alternatives",
                                     {"extends": entry, "alternatives": questions},
                                     len(given), examples=examples))
            continue
        mined = result[at]
        merged = list(dict.fromkeys([*mined.item.get("alternatives", []), *questions]))
        result[at] = replace(mined, item={**mined.item, "alternatives": merged},
                             count=mined.count + len(given),
                             examples=mined.examples + examples)
    return result
