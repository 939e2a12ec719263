"""The dashboard (``/desk/dashboard``): how the bot is doing over a date range, rendered on
the server (numbers, SVG charts, the knowledge gaps) so that it needs no script. ::

    GET /desk/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD    the page
    GET /desk/api/dashboard?from&to                      the same numbers as JSON

The numbers are :func:`bot.insights.figures.figures` of the range's events; the gaps are
the "I don't know" questions grouped by topic (:mod:`bot.insights.gaps`). The latest
``bot eval --answers`` (``.bot/eval/answers.json``) adds its risk-coverage chart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.insights.activity import read_activity
from bot.insights.figures import Figures, figures
from bot.insights.gaps import Gap, Gaps
from bot.insights.svg import bar_chart, line_chart, risk_coverage_chart
from bot.server.desk.access import DESK_TITLE, PAGE_HEADERS, STATIC, escape
from bot.server.lead.access import date_range, lead, lead_page
from bot.sessions.store import SessionStore
from retrieval.embedder import Embedder

GAPS_SHOWN = 10


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def cards(numbers: Figures) -> list[tuple[str, str, str, Any]]:
    """``(id, label, shown, value)`` of each number the page shows."""
    n = numbers.as_dict()
    return [
        ("conversations", "Conversations", f"{numbers.conversations:,}", n["conversations"]),
        ("resolved_share", "Resolved without a person",
         f"{_percent(n['resolved_share'])} ({numbers.resolved_by_bot:,})", n["resolved_share"]),
        ("handoff_rate", "Handed to a person",
         f"{_percent(n['handoff_rate'])} ({numbers.handed_off:,})", n["handoff_rate"]),
        ("fallback_rate", "\"I don't know\"",
         f"{_percent(n['fallback_rate'])} ({numbers.fallbacks:,} of {numbers.turns:,} turns)",
         n["fallback_rate"]),
        ("marked_wrong", "Answers marked wrong",
         f"{numbers.marked_wrong:,} of {numbers.reviewed:,} reviewed", n["marked_wrong"]),
        ("satisfaction", "Satisfaction",
         f"{_percent(n['satisfaction'])} ({numbers.up:,} up, {numbers.down:,} down)",
         n["satisfaction"]),
        ("first_response_s", "First response by a person (median)",
         _duration(numbers.first_response_s), n["first_response_s"]),
        ("resolution_s", "Resolution after a handoff (median)",
         _duration(numbers.resolution_s), n["resolution_s"]),
        ("turns", "Turns", f"{numbers.turns:,}", n["turns"]),
    ]


def charts(numbers: Figures, evaluation: dict[str, Any] | None) -> list[str]:
    """The page's SVG charts."""
    days = [d.date.strftime("%d %b") for d in numbers.days]
    found = [bar_chart("Conversations per day", days,
                       [d.conversations for d in numbers.days], x_label="day (UTC)",
                       y_label="conversations"),
             line_chart("\"I don't know\", handoffs and satisfaction per day", days,
                        {name: [d.rates()[rate] for d in numbers.days] for name, rate in (
                            ("\"I don't know\" (of turns)", "fallback_rate"),
                            ("handed off (of conversations)", "handoff_rate"),
                            ("satisfaction (thumbs up)", "satisfaction"))},
                        x_label="day (UTC)", y_label="share")]
    points = (evaluation or {}).get("risk_coverage")
    if isinstance(points, list) and points:
        found.append(risk_coverage_chart(points, title="Risk and coverage on the held-out "
                                         "questions (latest bot eval)",
                                         threshold=(evaluation or {}).get("threshold")))
    return found


def body(numbers: Figures, gaps: list[Gap], evaluation: dict[str, Any] | None) -> str:
    """The page's numbers, charts and gaps as HTML (every text escaped)."""
    parts = ['<section aria-label="Numbers" class="cards">']
    for key, label, shown, value in cards(numbers):
        parts.append(f'<div class="card"><div class="label">{escape(label)}</div>'
                     f'<div class="value" data-figure="{key}" data-value='
                     f'"{escape(json.dumps(value))}">{escape(shown)}</div></div>')
    parts.append('</section><section aria-label="Charts" class="charts">')
    parts += [f'<figure class="chart">{svg}</figure>' for svg in charts(numbers, evaluation)]
    parts.append('</section><section aria-labelledby="gaps-title"><h2 id="gaps-title">'
                 "Knowledge gaps: what customers asked that the bot did not know</h2>")
    if not gaps:
        parts.append('<p class="empty">No "I don\'t know" answers in this range.</p>')
    else:
        parts.append('<table class="gaps"><thead><tr><th scope="col">Topic</th>'
                     '<th scope="col">Asked</th><th scope="col">Examples</th></tr></thead>'
                     "<tbody>")
        for gap in gaps:
            examples = "".join(f"<li>{escape(e)}</li>" for e in gap.examples)
            parts.append(f'<tr class="gap"><td>{escape(gap.topic)}</td>'
                         f'<td class="count">{gap.count:,}</td><td><ul>{examples}</ul></td>'
                         "</tr>")
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


class Dashboard:
    """The dashboard's routes; ``store`` and ``embedder`` are read at request time."""

    def __init__(self, store: Callable[[], SessionStore],
                 embedder: Callable[[], Embedder | None], *, ttl_s: float,
                 evaluation: Path) -> None:
        self.store = store
        self.embedder = embedder
        self.ttl_s = ttl_s
        self.evaluation = evaluation  # the latest `bot eval --answers` report
        self._gaps = Gaps(None)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/desk/dashboard", self.page),
                web.get("/desk/api/dashboard", self.numbers)]

    async def _read(self, request: web.Request) -> tuple[Figures, list[Gap], str, str]:
        first, last, since, until = date_range(request)
        activity = await read_activity(self.store(), since, until)
        embedder = self.embedder()
        if self._gaps.embedder is not embedder:  # a reload brought another model
            self._gaps = Gaps(embedder)
        questions = [a.question for a in activity.answers if a.kind == "fallback"
                     and a.question]
        gaps = await asyncio.to_thread(self._gaps.find, questions, top=GAPS_SHOWN)
        return figures(activity, ttl_s=self.ttl_s), gaps, first.isoformat(), last.isoformat()

    def _evaluation(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.evaluation.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def numbers(self, request: web.Request) -> web.Response:
        await lead(request)
        numbers, gaps, first, last = await self._read(request)
        return web.json_response({
            "from": first, "to": last, "figures": numbers.as_dict(),
            "days": [{"date": d.date.isoformat(), "turns": d.turns,
                      "conversations": d.conversations, "fallbacks": d.fallbacks,
                      "handed_off": d.handed_off, "up": d.up, "down": d.down}
                     for d in numbers.days],
            "gaps": [{"topic": g.topic, "count": g.count, "examples": list(g.examples)}
                     for g in gaps]})

    async def page(self, request: web.Request) -> web.Response:
        signed = await lead_page(request)
        numbers, gaps, first, last = await self._read(request)
        html = (STATIC / "dashboard.html").read_text(encoding="utf-8")
        for key, value in {"title": request.app[DESK_TITLE], "agent": signed.agent,
                           "from": first, "to": last}.items():
            html = html.replace("{{" + key + "}}", escape(value))
        html = html.replace("{{body}}", body(numbers, gaps, self._evaluation()))
        return web.Response(text=html, content_type="text/html", headers=PAGE_HEADERS)
