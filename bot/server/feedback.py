"""Thumbs up/down on replies, stored as events, exported as chat training data.

Ratings come from the REST route below and from chat channels (:func:`record_rating`: a
reaction to one of the bot's messages, or a message that is only a thumbs emoji).

``POST /webhooks/rest/feedback`` with ``{"sender"?, "reply_index"?, "reply_text"?, "rating":
"up"|"down", "comment"?, "channel"?}`` and the conversation's credential (its session token,
or an API token naming ``sender``/``channel``; see bot/server/callers.py). ``reply_index``
counts the replies (bot and agent) in the session's current history from 0, negative from
the end; the default ``-1`` is the last one. ``reply_text`` (the widget's thumbs) rates the
latest reply with that text instead. The event keeps the conversation up to that
reply, so exporting later does not depend on the session still existing. ``bot export``
writes one JSONL row per rated reply (the latest rating wins): ``{"messages": [{"role",
"content"}...], "rating", "comment", ...}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.dialogue.handoff import handoff_status
from bot.errors import BadRequest
from bot.server.agent_api import text_field
from bot.server.callers import conversation_of
from bot.sessions.events import FEEDBACK_EVENT
from bot.sessions.store import SessionStore
from channels.http import read_json
from foundation.feedback import Rating
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
RATINGS = ("up", "down")
THANKS = "Thank you for the feedback."
MAX_COMMENT_CHARS = 1000
MAX_REPLY_TEXT_CHARS = 8000
_ROLES = {"user": "user", "bot": "assistant", "agent": "assistant"}


def reply_positions(history: list[dict[str, Any]]) -> list[int]:
    """Where the replies (the bot's and agents') are in ``history``."""
    return [i for i, turn in enumerate(history) if turn.get("role") in ("bot", "agent")]


def rated_turns(history: list[dict[str, Any]], index: int) -> tuple[list[dict[str, Any]], int]:
    """The history up to the ``index``-th reply, and that reply's position in it."""
    replies = reply_positions(history)
    if not -len(replies) <= index < len(replies):
        raise BadRequest(f"'reply_index' {index} is out of range: the conversation has "
                         f"{len(replies)} replies")
    position = replies[index]
    return history[: position + 1], position


def reply_with_text(history: list[dict[str, Any]], text: str) -> int:
    """The index (from the end, as ``reply_index``) of the latest reply whose text is
    ``text``; 400 when there is none."""
    replies = reply_positions(history)
    for back, position in enumerate(reversed(replies), start=1):
        if str(history[position].get("text") or "").strip() == text:
            return -back
    raise BadRequest("'reply_text' matches no reply of this conversation")


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
        wanted = text_field(data, "reply_text", required=False, limit=MAX_REPLY_TEXT_CHARS)
        key = f"{channel}:{sender}"
        store = self.store()
        session = await store.get(key, channel=channel, sender=sender)
        if wanted is not None:
            index = reply_with_text(session.history, wanted)
        turns, position = rated_turns(session.history, index)
        await log_feedback(store, key, turns, rating=rating, comment=comment,
                           reply_index=index, source="rest")
        return web.json_response({"ok": True, "rated": turns[-1].get("text", ""),
                                  "position": position})


async def log_feedback(store: SessionStore, key: str, turns: list[dict[str, Any]], *,
                       rating: str, comment: str | None, reply_index: int, source: str) -> None:
    """Store a rating of ``turns[-1]`` (a reply) with the conversation up to it."""
    rated = turns[-1]
    await store.log_event(key, FEEDBACK_EVENT, {
        "rating": rating, "comment": comment, "reply_index": reply_index, "source": source,
        "turn_ts": rated.get("ts"), "kind": rated.get("kind"),
        "citations": rated.get("citations", []), "messages": chat_messages(turns)})


def _sent_as(turn: dict[str, Any], sent: str) -> bool:
    """Whether the channel's message ``sent`` carried this reply (a ``Sources:`` line and
    the like may follow the reply's text)."""
    text = str(turn.get("text") or "")
    return bool(text) and (sent == text or sent.startswith(text))


async def record_rating(store: SessionStore, message: UserMessage,
                        rating: Rating) -> BotReply | None:
    """Record a chat channel's ``rating`` of a reply in ``message``'s conversation.

    A reaction rates the reply whose text it names (the last reply when it names none) and
    gets no answer; one on a message that is not in the history (a notice, a reply since
    forgotten) is ignored. A typed thumbs rates the last reply and is thanked; it is not
    feedback (None: answer it as a message) when there is no reply yet or while a person
    handles the conversation, to whom it is addressed.
    """
    key = message.session_key
    session = await store.get(key, channel=message.channel, sender=message.sender)
    if not rating.reaction and handoff_status(session) is not None:
        return None
    replies = reply_positions(session.history)
    sent = rating.rated_text
    found = [i for i in replies if sent is None or _sent_as(session.history[i], sent)]
    if not found:
        if not rating.reaction:
            return None
        log.info("feedback: a %s reaction in %s names no reply in the history; ignored",
                 rating.rating, message.channel)
        return BotReply(text="", kind="feedback")
    position = found[-1]
    await log_feedback(store, key, session.history[: position + 1], rating=rating.rating,
                       comment=None, reply_index=replies.index(position) - len(replies),
                       source="reaction" if rating.reaction else "message")
    return BotReply(text="" if rating.reaction else THANKS, kind="feedback")


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
