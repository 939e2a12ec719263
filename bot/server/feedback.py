"""Thumbs up/down on replies, stored as events, exported as chat training data.

``POST /webhooks/rest/feedback`` with ``{"sender"?, "reply_index"?, "rating": "up"|"down",
"comment"?, "channel"?}`` and the conversation's credential (its session token, or an API
token naming ``sender``/``channel``; see bot/server/callers.py). ``reply_index`` counts
the replies (bot and agent) in the session's current history from 0, negative from the
end; the default ``-1`` is the last one. The event keeps the conversation up to that
reply, so exporting later does not depend on the session still existing. ``bot export``
writes one JSONL row per rated reply (the latest rating wins): ``{"messages": [{"role",
"content"}...], "rating", "comment", ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.errors import BadRequest
from bot.server.agent_api import text_field
from bot.server.callers import conversation_of
from bot.sessions.events import FEEDBACK_EVENT
from bot.sessions.store import SessionStore
from channels.http import read_json

RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 1000
_ROLES = {"user": "user", "bot": "assistant", "agent": "assistant"}


def rated_turns(history: list[dict[str, Any]], index: int) -> tuple[list[dict[str, Any]], int]:
    """The history up to the ``index``-th reply, and that reply's position in it."""
    replies = [i for i, turn in enumerate(history) if turn.get("role") in ("bot", "agent")]
    if not -len(replies) <= index < len(replies):
        raise BadRequest(f"'reply_index' {index} is out of range: the conversation has "
                         f"{len(replies)} replies")
    position = replies[index]
    return history[: position + 1], position


def chat_messages(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History turns as chat messages (agent replies marked ``"source": "agent"``).

    An agent message delivered later as the reply to a user message (``kind: agent``) is
    kept once, where the agent wrote it.
    """
    messages: list[dict[str, Any]] = []
    agent_texts: set[str] = set()
    for turn in turns:
        role = _ROLES.get(str(turn.get("role")))
        if role is None or (turn.get("kind") == "agent" and turn.get("role") == "bot"
                            and turn.get("text") in agent_texts):
            continue
        if turn.get("role") == "agent":
            agent_texts.add(str(turn.get("text")))
        message: dict[str, Any] = {"role": role, "content": turn.get("text", "")}
        if turn.get("role") == "agent":
            message["source"] = "agent"
        messages.append(message)
    return messages


class FeedbackRoute:
    """``POST /webhooks/rest/feedback``; ``store`` is read at request time."""

    def __init__(self, store: Callable[[], SessionStore],
                 channels: Mapping[str, Any]) -> None:
        self.store = store
        self.channels = channels

    def install(self, app: web.Application) -> None:
        app.add_routes([web.post("/webhooks/rest/feedback", self.receive)])

    async def receive(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        channel, sender = conversation_of(request, sender=data.get("sender"),
                                          channel=data.get("channel"), channels=self.channels)
        rating = data.get("rating")
        if rating not in RATINGS:
            raise BadRequest("'rating' must be \"up\" or \"down\"")
        index = data.get("reply_index", -1)
        if isinstance(index, bool) or not isinstance(index, int):
            raise BadRequest("'reply_index' must be an integer")
        comment = text_field(data, "comment", required=False, limit=MAX_COMMENT_CHARS)
        key = f"{channel}:{sender}"
        store = self.store()
        session = await store.get(key, channel=channel, sender=sender)
        turns, position = rated_turns(session.history, index)
        rated = turns[-1]
        await store.log_event(key, FEEDBACK_EVENT, {
            "rating": rating, "comment": comment, "reply_index": index,
            "turn_ts": rated.get("ts"), "kind": rated.get("kind"),
            "citations": rated.get("citations", []), "messages": chat_messages(turns)})
        return web.json_response({"ok": True, "rated": rated.get("text", ""),
                                  "position": position})


async def export_feedback(store: SessionStore, out: Path, *,
                          rating: str | None = None) -> int:
    """Write rated replies as JSONL chat examples to ``out``; returns how many."""
    latest: dict[tuple[str, Any], dict[str, Any]] = {}
    async for event in store.iter_events():
        if event["kind"] != FEEDBACK_EVENT:
            continue
        data = event["data"]
        latest[(event["key"], data.get("turn_ts"))] = {
            "messages": data.get("messages", []), "rating": data.get("rating"),
            "comment": data.get("comment"), "kind": data.get("kind"),
            "citations": data.get("citations", []), "ts": event["ts"]}
    rows = [row for row in latest.values() if rating is None or row["rating"] == rating]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
