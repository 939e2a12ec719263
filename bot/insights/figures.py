"""The dashboard's numbers, computed from an :class:`~bot.insights.activity.Activity`.

- a **conversation** is a key's turns with no pause longer than the session lifetime
  (``sessions.ttl_minutes``: what the store itself calls a session);
- **handed off**: a conversation with a turn that handed it to a person; the others were
  **resolved without a person**;
- **"I don't know"**: turns of kind ``fallback``;
- **marked wrong**: answers of the range whose latest review mark is ``wrong`` or
  ``should_not_answer``;
- **satisfaction**: thumbs up among the thumbs given in the range;
- **first response**: from the handoff to the first agent reply, **resolution**: from the
  handoff to the agent resolving or releasing the conversation (medians, seconds).
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from dataclasses import dataclass, field

from bot.insights.activity import Activity, Answer

WRONG = ("wrong", "should_not_answer")
MAX_DAYS = 400  # a longer range lists only the days with events


def share(part: int, whole: int) -> float | None:
    """``part / whole``; None when there is no whole."""
    return part / whole if whole else None


@dataclass
class Day:
    """One UTC day's counts."""

    date: dt.date
    turns: int = 0
    conversations: int = 0
    fallbacks: int = 0
    handed_off: int = 0  # conversations that started that day and were handed off
    up: int = 0
    down: int = 0

    def rates(self) -> dict[str, float | None]:
        """The day's "I don't know" rate, handoff rate and satisfaction."""
        return {"fallback_rate": share(self.fallbacks, self.turns),
                "handoff_rate": share(self.handed_off, self.conversations),
                "satisfaction": share(self.up, self.up + self.down)}


@dataclass
class Figures:
    """What the dashboard shows for one date range."""

    turns: int = 0
    conversations: int = 0
    handed_off: int = 0
    fallbacks: int = 0
    reviewed: int = 0
    marked_wrong: int = 0
    up: int = 0
    down: int = 0
    first_response_s: float | None = None
    resolution_s: float | None = None
    reply_ms_p50: float | None = None
    days: list[Day] = field(default_factory=list)

    @property
    def resolved_by_bot(self) -> int:
        return self.conversations - self.handed_off

    def as_dict(self) -> dict[str, float | int | None]:
        """The numbers (rates as shares of 1), for the JSON API and the tests."""
        return {"turns": self.turns, "conversations": self.conversations,
                "resolved_by_bot": self.resolved_by_bot, "handed_off": self.handed_off,
                "resolved_share": share(self.resolved_by_bot, self.conversations),
                "handoff_rate": share(self.handed_off, self.conversations),
                "fallbacks": self.fallbacks,
                "fallback_rate": share(self.fallbacks, self.turns),
                "reviewed": self.reviewed, "marked_wrong": self.marked_wrong,
                "thumbs_up": self.up, "thumbs_down": self.down,
                "satisfaction": share(self.up, self.up + self.down),
                "first_response_s": self.first_response_s, "resolution_s": self.resolution_s,
                "reply_ms_p50": self.reply_ms_p50}


def conversations(answers: list[Answer], ttl_s: float) -> list[list[Answer]]:
    """The answers split into conversations: by key, a new one after a pause over
    ``ttl_s``; in order of their first turn."""
    by_key: dict[str, list[list[Answer]]] = {}
    for answer in answers:
        runs = by_key.setdefault(answer.key, [])
        if not runs or answer.ts - runs[-1][-1].ts > ttl_s:
            runs.append([])
        runs[-1].append(answer)
    return sorted((run for runs in by_key.values() for run in runs), key=lambda r: r[0].ts)


def _after(times: list[float], at: float) -> float | None:
    """Seconds from ``at`` to the first of ``times`` (sorted) at or after it."""
    n = bisect.bisect_left(times, at)
    return times[n] - at if n < len(times) else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _date(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).date()


def figures(activity: Activity, *, ttl_s: float) -> Figures:
    """The dashboard's numbers for ``activity`` (see the module docstring)."""
    result = Figures(turns=len(activity.answers))
    days: dict[dt.date, Day] = {}

    def day(at: float | dt.date) -> Day:
        date = at if isinstance(at, dt.date) else _date(at)
        return days.setdefault(date, Day(date))

    for answer in activity.answers:
        day(answer.ts).turns += 1
        if answer.kind == "fallback":
            result.fallbacks += 1
            day(answer.ts).fallbacks += 1
        if answer.mark is not None:
            result.reviewed += 1
            result.marked_wrong += answer.mark.mark in WRONG
    first_responses, resolutions = [], []
    for run in conversations(activity.answers, ttl_s):
        result.conversations += 1
        day(run[0].ts).conversations += 1
        handoff = next((a.ts for a in run if a.handoff), None)
        if handoff is None:
            continue
        result.handed_off += 1
        day(run[0].ts).handed_off += 1
        key = run[0].key
        if (wait := _after(activity.agent_replies.get(key, []), handoff)) is not None:
            first_responses.append(wait)
        if (took := _after(activity.closings.get(key, []), handoff)) is not None:
            resolutions.append(took)
    for _key, ts, up in activity.ratings:
        result.up += up
        result.down += not up
        day(ts).up += up
        day(ts).down += not up
    result.first_response_s = _median(first_responses)
    result.resolution_s = _median(resolutions)
    result.reply_ms_p50 = _median([a.ms for a in activity.answers if a.ms is not None])
    first, last = _date(activity.since), _date(max(activity.since, activity.until - 1))
    if (last - first).days <= MAX_DAYS:  # every day of the range, quiet ones too
        for n in range((last - first).days + 1):
            day(first + dt.timedelta(days=n))
    result.days = [days[d] for d in sorted(days)]
    return result
