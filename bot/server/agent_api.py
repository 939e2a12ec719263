"""The agent API: people answer handed-off conversations; users fetch agent messages.

Every ``/agent`` route needs ``Authorization: Bearer <token>`` with an agent's own token
(``handoff.agents``: name -> token), which says who acts; ``handoff.agent_token``, shared by
everyone, acts as the agent ``"agent"``. 401 without a valid token, 403 while none is
configured or when a body's ``"agent"`` names someone else. Once an agent holds a
conversation, only that agent may read, answer or release it (409 for the others); events
record who did what. A conversation's id is its session key (``channel:sender``)::

    GET  /agent/conversations[?status=waiting|active|released|all]   oldest first, with
                                                            summaries (all: released too)
    GET  /agent/conversation?id=ID                          history, slots, summary
    POST /agent/take     {"id"}                             409 if another agent has it
    POST /agent/reply    {"id", "text"}                     {"delivered": "pushed"|"queued"}
    POST /agent/release  {"id"}                             hand back to the bot
    GET  /webhooks/rest/outbox[?sender=S&channel=rest]      queued agent messages (the
                                                            conversation's credential:
                                                            bot/server/callers.py)

A reply is stored in the session history and delivered through the app's ``DELIVER``
callback (the server wires it to the channel's ``push``); when that cannot deliver, it is
queued in the session and returned by the outbox route or with the user's next message.
Listing needs a store with ``sessions_where`` (SQLite, Redis); others answer 501.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.definition.config import BotConfig
from bot.dialogue.handoff import handoff_status, pop_outbox, queue, release, summarize, take
from bot.errors import BadRequest, BotError, Forbidden
from bot.server.callers import conversation_of
from bot.sessions.events import AGENT_REPLY_EVENT, HANDOFF_RELEASED_EVENT, HANDOFF_TAKEN_EVENT
from bot.sessions.store import Session, SessionStore
from channels.boundary import query_value
from channels.http import check_token, read_json
from foundation.messages import BotReply

log = logging.getLogger(__name__)
Deliver = Callable[[str, str, BotReply], Awaitable[bool]]  # (channel, sender, reply) -> pushed
DELIVER: web.AppKey[Deliver] = web.AppKey("deliver")
MAX_REPLY_CHARS = 4000
SHARED_AGENT = "agent"  # who acts with the shared handoff.agent_token
HANDBACK_KIND = "handback"  # the message that the bot is back (clients drop the handoff banner)


def agent_message(text: str, agent: str, *, kind: str = "agent") -> BotReply:
    """A message of a person to the customer; ``decision`` names who decided it (clients
    show the name: the widget's agent bubbles, join and leave lines)."""
    return BotReply(text=text, kind=kind, handoff=True, agent=agent)


def text_field(data: dict[str, Any], name: str, *, required: bool = True,
               limit: int = 200) -> str | None:
    """A string field of a JSON body, stripped and length-checked."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' is required and must be a non-empty string")
    if len(value) > limit:
        raise BadRequest(f"'{name}' is too long (limit {limit} characters)")
    return value.strip()


def check_holder(session: Session, agent: str) -> str | None:
    """The agent holding ``session`` (None: nobody yet); 409 when it is another agent."""
    holder = session.state["handoff"].get("agent")
    if holder not in (None, agent):
        raise web.HTTPConflict(text=json.dumps({"error": f"taken by {holder}"}),
                               content_type="application/json")
    return holder


def split_key(key: str) -> tuple[str, str]:
    """``(channel, sender)`` of a session key."""
    channel, sep, sender = key.partition(":")
    if not sep or not channel or not sender:
        raise BadRequest(f"'id' must be a conversation id like 'rest:alice', got {key!r}")
    return channel, sender



def last_question(history: list[dict[str, Any]]) -> str | None:
    """The customer's latest message before an agent's reply (what the agent answers)."""
    for turn in reversed(history):
        if turn.get("role") == "agent":
            return None  # the agent answered it already: a follow-up of the agent's own
        if turn.get("role") == "user":
            return str(turn.get("text", ""))
    return None


@dataclass(frozen=True)
class Acting:
    """An agent acting on a handed-off conversation (:meth:`AgentDesk.acting_on` holds it)."""

    agent: str
    key: str
    store: SessionStore
    session: Session
    holder: str | None  # the agent that held it before (None: nobody yet)

    async def log(self, kind: str, data: dict[str, Any]) -> None:
        """Record an event of the conversation (events: ``bot.sessions.events``)."""
        await self.store.log_event(self.key, kind, data)


class AgentDesk:
    """The agent routes of one bot; ``store`` is read at request time (loaded on startup)."""

    def __init__(self, config: BotConfig, store: Callable[[], SessionStore]) -> None:
        self.config = config
        self.store = store

    def install(self, app: web.Application, *, deliver: Deliver | None = None) -> None:
        """Add the routes (and the delivery callback, if given) to ``app``."""
        if deliver is not None:
            app[DELIVER] = deliver
        app.add_routes([
            web.get("/agent/conversations", self.conversations),
            web.get("/agent/conversation", self.conversation),
            web.post("/agent/take", self.take),
            web.post("/agent/reply", self.reply),
            web.post("/agent/release", self.release),
            web.get("/webhooks/rest/outbox", self.outbox),
        ])

    def _authorize(self, request: web.Request, claimed: object = None) -> str:
        """The agent whose token ``request`` carries (401/403 otherwise); 403 when the body
        names (``claimed``) another agent."""
        handoff = self.config.handoff
        credentials = dict(handoff.agents) if handoff else {}
        if handoff is not None and handoff.agent_token:
            credentials.setdefault(SHARED_AGENT, handoff.agent_token)
        token = check_token(request, credentials.values(),
                            disabled="set handoff.agents (or handoff.agent_token)")
        agent = next(name for name, known in credentials.items() if known == token)
        if claimed not in (None, agent):
            raise Forbidden(f"this token belongs to agent {agent!r}, not {claimed!r}")
        return agent

    def _summary(self, session: Session) -> dict[str, Any]:
        messages = self.config.handoff.summary_messages if self.config.handoff else 5
        return summarize(session, messages=messages)

    def brief(self, session: Session) -> dict[str, Any]:
        """A handed-off conversation as the agents' lists show it (with its summary)."""
        state = session.state.get("handoff", {})
        return {"id": session.key, "channel": session.channel, "sender": session.sender,
                "status": state.get("status"), "reason": state.get("reason"),
                "since": state.get("since"), "agent": state.get("agent"),
                "updated_at": session.updated_at, "summary": self._summary(session)}

    async def conversations(self, request: web.Request) -> web.Response:
        self._authorize(request)
        wanted = query_value(request, "status") or "all"
        statuses = {"waiting": ["waiting"], "active": ["active"], "released": ["released"],
                    "all": ["waiting", "active", "released"]}.get(wanted)
        if statuses is None:
            raise BadRequest("'status' must be waiting, active, released or all")
        sessions = await self.handed_off(statuses)
        return web.json_response({"conversations": [self.brief(s) for s in sessions]})

    async def handed_off(self, statuses: list[str]) -> list[Session]:
        """The conversations whose handoff has one of ``statuses``, least recently updated
        first (501 when the session store cannot list them)."""
        find = getattr(self.store(), "sessions_where", None)
        if find is None:
            raise web.HTTPNotImplemented(text=json.dumps({
                "error": "this session store cannot list conversations"}),
                content_type="application/json")
        sessions: list[Session] = await find("handoff.status", statuses)
        return sessions

    async def load(self, key: str) -> Session:
        """The handed-off conversation ``key`` (400 for a malformed id, 404 unless handed off)."""
        channel, sender = split_key(key)
        session = await self.store().get(key, channel=channel, sender=sender)
        if handoff_status(session) is None:
            raise web.HTTPNotFound(text=json.dumps({"error": f"{key!r} is not handed off"}),
                                   content_type="application/json")
        return session

    async def conversation(self, request: web.Request) -> web.Response:
        agent = self._authorize(request)
        session = await self.load(query_value(request, "id") or "")
        check_holder(session, agent)
        return web.json_response({**self.brief(session), "history": session.history,
                                  "slots": session.slots})

    async def _action(self, request: web.Request) -> tuple[dict[str, Any], str, str]:
        """An agent's POST: its JSON body, the agent (401/403) and the conversation id."""
        data = await read_json(request)
        agent = self._authorize(request, data.get("agent"))
        return data, agent, str(text_field(data, "id"))

    @asynccontextmanager
    async def acting_on(self, agent: str, key: str) -> AsyncIterator[Acting]:
        """One agent action as a transaction: lock the conversation, load it (404 unless it
        is handed off), check ``agent`` may act on it (409 while another agent holds it),
        and save it when the block ends without an error."""
        store = self.store()
        async with store.lock(key):
            session = await self.load(key)
            yield Acting(agent, key, store, session, check_holder(session, agent))
            await store.save(session)

    async def take(self, request: web.Request) -> web.Response:
        _, agent, key = await self._action(request)
        async with self.acting_on(agent, key) as acting:
            take(acting.session, agent)
        await acting.log(HANDOFF_TAKEN_EVENT, {"agent": agent})
        return web.json_response(self.brief(acting.session))

    async def reply(self, request: web.Request) -> web.Response:
        data, agent, key = await self._action(request)
        text = str(text_field(data, "text", limit=MAX_REPLY_CHARS))
        return web.json_response({"delivered": await self.answer(request.app, agent, key, text)})

    async def answer(self, app: web.Application, agent: str, key: str, text: str) -> str:
        """``agent`` answers conversation ``key`` (taking it if nobody holds it): stored in
        the history, pushed or queued (the result says which), recorded for `bot train`."""
        async with self.acting_on(agent, key) as acting:
            session = acting.session
            if acting.holder is None:
                take(session, agent)
            asked = last_question(session.history)
            session.add("agent", text, max_history=self.config.sessions.max_history,
                        kind="agent", agent=agent)
        delivered = await self.send(app, session, agent_message(text, agent))
        await acting.log(AGENT_REPLY_EVENT, {  # `bot train` learns from the pair
            "agent": agent, "delivered": delivered, "question": asked, "text": text})
        return delivered

    async def release(self, request: web.Request) -> web.Response:
        _, agent, key = await self._action(request)
        delivered = await self.hand_back(request.app, agent, key, HANDOFF_RELEASED_EVENT)
        return web.json_response({"id": key, "status": "bot", "delivered": delivered})

    async def hand_back(self, app: web.Application, agent: str, key: str,
                        event: str) -> str | None:
        """``agent`` hands conversation ``key`` back to the bot (recorded as ``event``); the
        customer gets ``handoff.returned_message``, if any (how it was delivered, else None)."""
        async with self.acting_on(agent, key) as acting:
            release(acting.session)
        await acting.log(event, {"agent": agent})
        text = self.config.handoff.returned_message if self.config.handoff else ""
        if not text:
            return None
        return await self.send(app, acting.session, BotReply(text=text, kind=HANDBACK_KIND))

    async def send(self, app: web.Application, session: Session, reply: BotReply) -> str:
        """Push ``reply`` to the user's channel, or queue it in the session."""
        deliver = app.get(DELIVER)
        if deliver is not None:
            try:
                if await deliver(session.channel, session.sender, reply):
                    return "pushed"
            except BotError as exc:
                log.warning("pushing an agent message to %s failed: %s", session.channel, exc)
        store = self.store()
        async with store.lock(session.key):
            fresh = await store.get(session.key, channel=session.channel, sender=session.sender)
            queue(fresh, {"text": reply.text, "kind": reply.kind, "ts": time.time(),
                          **({"agent": reply.agent} if reply.agent else {})})
            await store.save(fresh)
        return "queued"

    async def outbox(self, request: web.Request) -> web.Response:
        channel, sender = conversation_of(request, sender=query_value(request, "sender"),
                                          channel=query_value(request, "channel"),
                                          channels=self.config.channels)
        key = f"{channel}:{sender}"
        store = self.store()
        async with store.lock(key):
            session = await store.get(key, channel=channel, sender=sender)
            messages = pop_outbox(session)
            if messages:
                await store.save(session)
        return web.json_response({"messages": messages,
                                  "handoff": handoff_status(session) is not None})
