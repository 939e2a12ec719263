"""Usage statistics from a session store's events: what ``bot stats`` reports and plots.

It reads ``turn`` events (written for every served turn: channel, kind, intent) and
``feedback`` events (``{"rating": "up" | "down"}``), grouped by UTC day.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.insights.activity import rating
from bot.insights.figures import share
from bot.sessions.events import FEEDBACK_EVENT, TURN_EVENT
from bot.sessions.store import SessionStore

TOP_LABELS = 8


@dataclass
class DayStats:
    """One day's turns, the intents recognised and the kinds of reply, and feedback."""

    turns: int = 0
    fallbacks: int = 0
    handoffs: int = 0
    intents: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    up: int = 0
    down: int = 0

    @property
    def fallback_rate(self) -> float | None:
        return share(self.fallbacks, self.turns)

    @property
    def satisfaction(self) -> float | None:
        return share(self.up, self.up + self.down)


@dataclass
class Stats:
    """Everything ``bot stats`` shows."""

    days: dict[dt.date, DayStats] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    other_events: Counter[str] = field(default_factory=Counter)

    def day(self, ts: float) -> DayStats:
        date = dt.datetime.fromtimestamp(ts, tz=dt.UTC).date()
        return self.days.setdefault(date, DayStats())

    def total(self) -> DayStats:
        total = DayStats()
        for day in self.days.values():
            total.turns += day.turns
            total.fallbacks += day.fallbacks
            total.handoffs += day.handoffs
            total.intents.update(day.intents)
            total.kinds.update(day.kinds)
            total.up += day.up
            total.down += day.down
        return total


async def collect(store: SessionStore, *, since: float = 0.0) -> Stats:
    """Read the store's events since ``since`` (a Unix time)."""
    stats = Stats()
    async for event in store.iter_events(since=since):
        kind, data = event["kind"], event["data"]
        if kind == TURN_EVENT:
            day = stats.day(event["ts"])
            day.turns += 1
            day.fallbacks += data.get("kind") == "fallback"
            day.handoffs += bool(data.get("handoff"))
            if data.get("intent"):
                day.intents[str(data["intent"])] += 1
            day.kinds[str(data.get("kind") or "unknown")] += 1
            stats.sessions.add(event["key"])
        elif kind == FEEDBACK_EVENT and (vote := rating(data)) is not None:
            day = stats.day(event["ts"])
            day.up += vote
            day.down += not vote
        else:
            stats.other_events[kind] += 1
    return stats


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def summary(stats: Stats, bot: str) -> str:
    """A plain-text report."""
    total = stats.total()
    if not stats.days:
        return f"{bot}: no turn or feedback events yet"
    first, last = min(stats.days), max(stats.days)
    lines = [
        f"{bot}: {total.turns} turns in {len(stats.sessions)} sessions, {first} to {last} (UTC)",
        f"fallback rate {_percent(total.fallback_rate)}, handoffs {total.handoffs}, "
        f"satisfaction {_percent(total.satisfaction)} ({total.up} up, {total.down} down)",
        "top intents:" if total.intents else "top intents: none recognised",
        *(f"  {label:<32} {count:>7}" for label, count in total.intents.most_common(TOP_LABELS)),
        "reply kinds:",
        *(f"  {label:<32} {count:>7}" for label, count in total.kinds.most_common()),
        "per day: date, turns, fallback rate, satisfaction",
        *(f"  {date}  {d.turns:>7}  {_percent(d.fallback_rate):>8}  {_percent(d.satisfaction):>8}"
          for date, d in sorted(stats.days.items())),
    ]
    if stats.other_events:
        lines.append("other events: " + ", ".join(f"{k} {v}" for k, v in
                                                  stats.other_events.most_common()))
    return "\n".join(lines)


def plot(stats: Stats, out: Path, bot: str) -> list[Path]:
    """Write ``intents_over_time.png`` and ``fallback_satisfaction.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    dates = sorted(stats.days)
    x = np.array(dates, dtype="datetime64[D]")
    top = [label for label, _ in stats.total().intents.most_common(TOP_LABELS)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label in top:
        ax.plot(x, [stats.days[d].intents[label] for d in dates], marker="o", label=label)
    rest = [sum(stats.days[d].intents.values()) - sum(stats.days[d].intents[t] for t in top)
            for d in dates]
    if any(rest):
        ax.plot(x, rest, marker="o", linestyle="--", label="other intents")
    ax.set(title=f"{bot}: turns per day by intent", ylabel="turns")
    if top:
        ax.legend(fontsize="small", ncol=2)
    _day_axis(ax, x)
    intents = out / "intents_over_time.png"
    fig.savefig(intents, dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, (rate_ax, sat_ax) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for ax, values, title in (
        (rate_ax, [stats.days[d].fallback_rate for d in dates], "fallback rate"),
        (sat_ax, [stats.days[d].satisfaction for d in dates], "satisfaction (thumbs up)"),
    ):
        known = np.array([v is not None for v in values], dtype=bool)
        if known.any():
            ax.plot(x[known], [100 * v for v in values if v is not None], marker="o")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=f"{bot}: {title} per day", ylabel="%", ylim=(0, 100))
        _day_axis(ax, x)
    rates = out / "fallback_satisfaction.png"
    fig.savefig(rates, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [intents, rates]


def _day_axis(ax: Any, days: np.ndarray) -> None:
    """An x axis from the day before the first point to the day after the last, ticks on
    whole days (matplotlib's default spans years around a single day)."""
    import matplotlib.dates as mdates

    one = np.timedelta64(1, "D")
    ax.set_xlim(days[0] - one, days[-1] + one)
    span = int((days[-1] - days[0]) // one) + 2
    locator: Any = mdates.DayLocator(interval=max(1, span // 8)) if span <= 62 \
        else mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
