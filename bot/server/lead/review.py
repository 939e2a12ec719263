"""The review page (``/desk/review``): a lead reads the bot's answers and marks them right,
wrong (with the entry that answers the question) or "should not have answered". ::

    GET  /desk/review                                  the page
    GET  /desk/api/review/answers?from&to&show&below&offset
                                                       newest first, 50 at a time
    GET  /desk/api/review/entries?q=                   the served FAQ's entries to pick from
    POST /desk/api/review/mark {"key", "ts", "mark", "answer"?}

``show`` is a comma-separated list of ``low`` (confidence under ``below``, default 0.6),
``down`` (a thumbs down), ``abstained``, ``handoff`` and ``unmarked``; an answer passes
when it is any of them. A mark is a ``review_mark`` event of the answer's conversation,
which ``bot train`` and ``bot suggest`` read (:mod:`bot.learning.marks`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.errors import BadRequest
from bot.insights.activity import Answer, read_activity
from bot.learning.marks import KINDS, NONE, mark_of
from bot.server.agent_api import text_field
from bot.server.desk.access import DESK_TITLE, page
from bot.server.lead.access import date_range, lead, lead_acting, lead_page
from bot.sessions.events import REVIEW_MARK_EVENT, TURN_EVENT
from bot.sessions.store import SessionStore
from channels.boundary import query_value
from channels.http import read_json
from retrieval.passages import Passage

PAGE_SIZE = 50
LOW_CONFIDENCE = 0.6
FILTERS = {
    "low": lambda a, below: a.confidence is not None and a.confidence < below,
    "down": lambda a, below: a.rating is False,
    "abstained": lambda a, below: a.abstained,
    "handoff": lambda a, below: a.handoff,
    "unmarked": lambda a, below: a.mark is None,
}
MAX_ENTRIES = 20


def _number(request: web.Request, name: str, default: float, low: float,
            high: float) -> float:
    text = query_value(request, name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise BadRequest(f"the query parameter {name!r} must be a number from {low:g} to "
                         f"{high:g}")
    return value


def entry_rows(passages: Mapping[str, Passage], query: str) -> list[dict[str, str]]:
    """The entries whose id, question or title hold every word of ``query``; question
    matches first."""
    words = query.lower().split()
    found = []
    for passage in passages.values():
        title = passage.question or passage.title or passage.id
        haystack = f"{passage.id} {title} {' '.join(passage.alternatives)}".lower()
        if all(w in haystack for w in words):
            found.append((not all(w in title.lower() for w in words), title.lower(),
                          {"id": passage.id, "title": title, "source": passage.source}))
    return [row for *_, row in sorted(found, key=lambda f: (f[0], f[1]))][:MAX_ENTRIES]


class Review:
    """The review's routes; ``store`` and ``passages`` are read at request time."""

    def __init__(self, store: Callable[[], SessionStore],
                 passages: Callable[[], Mapping[str, Passage]]) -> None:
        self.store = store
        self.passages = passages

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/desk/review", self.page),
                web.get("/desk/api/review/answers", self.answers),
                web.get("/desk/api/review/entries", self.entries),
                web.post("/desk/api/review/mark", self.mark)]

    async def page(self, request: web.Request) -> web.Response:
        signed = await lead_page(request)
        return page("review.html", {"agent": signed.agent, "csrf": signed.csrf,
                                    "title": request.app[DESK_TITLE]})

    async def answers(self, request: web.Request) -> web.Response:
        await lead(request)
        first, last, since, until = date_range(request)
        shown = [s for s in (query_value(request, "show") or "").split(",") if s]
        unknown = [s for s in shown if s not in FILTERS]
        if unknown:
            raise BadRequest(f"'show' may hold {', '.join(FILTERS)}; not {unknown[0][:40]!r}")
        below = _number(request, "below", LOW_CONFIDENCE, 0.0, 1.0)
        offset = int(_number(request, "offset", 0, 0, 1e9))
        activity = await read_activity(self.store(), since, until)
        rows = [a for a in reversed(activity.answers) if a.reviewable and
                (not shown or any(FILTERS[s](a, below) for s in shown))]
        passages = self.passages()
        return web.json_response({
            "from": first.isoformat(), "to": last.isoformat(), "total": len(rows),
            "offset": offset, "answers": [self._row(a, passages)
                                          for a in rows[offset:offset + PAGE_SIZE]]})

    @staticmethod
    def _row(answer: Answer, passages: Mapping[str, Passage]) -> dict[str, Any]:
        row = answer.to_json()
        row["cited"] = [{"id": c, "title": (p.question or p.title or c) if p else c}
                        for c in answer.citations for p in [passages.get(c)]]
        return row

    async def entries(self, request: web.Request) -> web.Response:
        await lead(request)
        query = (query_value(request, "q") or "")[:200]
        return web.json_response({"entries": entry_rows(self.passages(), query)})

    async def mark(self, request: web.Request) -> web.Response:
        signed = await lead_acting(request)
        data = await read_json(request)
        key = str(text_field(data, "key", limit=300))
        ts = data.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            raise BadRequest("'ts' must be the answer's time (a number, as the list gives it)")
        kind = data.get("mark")
        if kind not in KINDS:
            raise BadRequest(f"'mark' must be one of {', '.join(KINDS)}")
        answer = text_field(data, "answer", required=False, limit=300)
        if kind == "wrong" and answer is None:
            raise BadRequest("a wrong answer needs 'answer': the entry that answers the "
                             f"question, or {NONE!r} when none does")
        if answer is not None and answer != NONE and answer not in self.passages():
            raise BadRequest(f"'answer' names no entry of the served FAQ: {answer[:80]!r}")
        store = self.store()
        turn = await _turn(store, key, float(ts))
        marked = {"question": turn.question, "mark": kind,
                  "answer": answer if kind == "wrong" else None,
                  "answered": list(turn.citations), "by": signed.agent,
                  "at": dt.datetime.now(dt.UTC).date().isoformat(), "turn_ts": turn.ts}
        await store.log_event(key, REVIEW_MARK_EVENT, marked)
        mark = mark_of(marked)
        assert mark is not None
        return web.json_response({"key": key, "ts": turn.ts, "mark": {
            "mark": mark.mark, "answer": mark.answer, "by": mark.by, "at": mark.at}})


async def _turn(store: SessionStore, key: str, ts: float) -> Answer:
    """The bot's answer logged at ``ts`` in ``key``; 404 when there is none."""
    async for event in store.iter_events(key=key, since=ts):
        if event["kind"] == TURN_EVENT and event["ts"] == ts:
            answer = Answer.of(event)
            if answer.reviewable:
                return answer
        if event["ts"] > ts:
            break
    raise web.HTTPNotFound(text='{"error": "no answer of the bot at that key and time"}',
                           content_type="application/json")
