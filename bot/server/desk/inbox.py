"""The desk's JSON routes (a sign-in each; POSTs also its CSRF token)::

    GET  /desk/api/queues                     waiting, mine, others' (oldest first)
    GET  /desk/api/conversation?id=ID         brief + transcript (409 while another holds it)
    GET  /desk/api/assist?id=ID               suggested answers for the last message
    POST /desk/api/take     {"id"}            exactly one agent wins (409 for the others)
    POST /desk/api/reply    {"id", "text"}    takes it first when nobody holds it
    POST /desk/api/release  {"id"}            back to the waiting queue, for another agent
    POST /desk/api/resolve  {"id"}            done: the bot answers again
    POST /desk/api/note     {"id", "text"}    a private note (never sent to the customer)
    POST /desk/api/typing   {"id"}            the customer's widget shows "<agent> is typing"
    POST /desk/sign-out

The customer is told when an agent joins and leaves (``agent_joined``/``agent_left``
messages naming the agent). Every action is an event naming the agent, and every open desk
hears of it (:mod:`bot.server.desk.hub`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.dialogue.handoff import take
from bot.errors import BotError
from bot.server.agent_api import DELIVER, AgentDesk, agent_message, check_holder, text_field
from bot.server.desk.access import COOKIE, SIGN_INS, acting, signed_in
from bot.server.desk.assist import Search, last_customer_message, suggestions
from bot.server.desk.hub import DeskHub
from bot.server.desk.transcript import transcript
from bot.sessions.events import (
    AGENT_NOTE_EVENT,
    HANDOFF_RESOLVED_EVENT,
    HANDOFF_RETURNED_EVENT,
    HANDOFF_TAKEN_EVENT,
)
from bot.sessions.store import Session
from channels.boundary import query_value
from channels.http import read_json
from retrieval.passages import Passage

MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 2000
LAST_MESSAGE_CHARS = 160
TYPING_EVERY_S = 2.0  # typing signals pushed per agent and conversation, at most
TYPING_CHANNELS = ("webchat", "websocket")  # the channels whose clients show it


class Inbox:
    """The desk's routes over the agent API's conversation rules (:class:`AgentDesk`)."""

    def __init__(self, api: AgentDesk, hub: DeskHub,
                 passages: Callable[[], Mapping[str, Passage]], search: Search) -> None:
        self.api = api
        self.hub = hub
        self.passages = passages
        self.search = search
        self.app: web.Application | None = None  # set by install_desk (assignment pushes)
        self._typed: dict[tuple[str, str], float] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/desk/api/queues", self.queues),
                web.get("/desk/api/conversation", self.conversation),
                web.get("/desk/api/assist", self.assist),
                web.post("/desk/api/typing", self.typing),
                web.post("/desk/api/take", self.take),
                web.post("/desk/api/reply", self.reply),
                web.post("/desk/api/release", self.release),
                web.post("/desk/api/resolve", self.resolve),
                web.post("/desk/api/note", self.note),
                web.post("/desk/sign-out", self.sign_out),
                web.get("/desk/socket", self.hub.handle)]

    def _row(self, session: Session) -> dict[str, Any]:
        brief = self.api.brief(session)
        said = brief["summary"]["last_user_messages"]
        brief["last_message"] = said[-1][:LAST_MESSAGE_CHARS] if said else ""
        brief["user"] = session.state.get("user")  # a verified customer's attributes
        return brief

    async def queues(self, request: web.Request) -> web.Response:
        me = (await signed_in(request)).agent
        rows = [self._row(s) for s in await self.api.handed_off(["waiting", "active"])]
        return web.json_response({
            "agent": me, "waiting": [r for r in rows if r["agent"] is None],
            "mine": [r for r in rows if r["agent"] == me],
            "others": [r for r in rows if r["agent"] not in (None, me)]})

    async def conversation(self, request: web.Request) -> web.Response:
        me = (await signed_in(request)).agent
        session = await self.api.load(query_value(request, "id") or "")
        check_holder(session, me)
        items = await transcript(self.api.store(), session, self.passages())
        return web.json_response({**self._row(session), "transcript": items,
                                  "slots": session.slots})

    async def _posted(self, request: web.Request) -> tuple[str, str, dict[str, Any]]:
        """A desk POST: the agent (401/403), the conversation id and the JSON body."""
        agent = (await acting(request)).agent
        data = await read_json(request)
        return agent, str(text_field(data, "id")), data

    async def assist(self, request: web.Request) -> web.Response:
        me = (await signed_in(request)).agent
        session = await self.api.load(query_value(request, "id") or "")
        check_holder(session, me)
        question = last_customer_message(session.history)
        return web.json_response({"question": question,
                                  "suggestions": await suggestions(self.search, question)})

    async def typing(self, request: web.Request) -> web.Response:
        """Tell the customer the agent holding the conversation is typing (throttled; only
        channels whose clients show it)."""
        agent, key, _ = await self._posted(request)
        session = await self.api.load(key)
        if check_holder(session, agent) != agent:
            raise web.HTTPConflict(text='{"error": "take the conversation first"}',
                                   content_type="application/json")
        now, last = time.monotonic(), self._typed.get((agent, key), 0.0)
        deliver = request.app.get(DELIVER)
        if session.channel not in TYPING_CHANNELS or deliver is None or \
                now - last < TYPING_EVERY_S:
            return web.json_response({"sent": False})
        if len(self._typed) > 10_000:
            self._typed.clear()
        self._typed[(agent, key)] = now
        try:
            sent = await deliver(session.channel, session.sender, agent_message(
                "", agent, kind="agent_typing"))
        except BotError:  # the customer's widget is closed: nobody to tell
            sent = False
        return web.json_response({"sent": sent})

    async def take_for(self, agent: str, key: str) -> Session:
        """Assignment: ``agent`` takes ``key`` as if they pressed *Take*."""
        assert self.app is not None, "install_desk sets the app"
        return await self._take(self.app, agent, key, via="assignment")

    async def _take(self, app: web.Application, agent: str, key: str, *,
                    via: str = "desk") -> Session:
        """``agent`` takes ``key``: 409 when another agent holds it or wins the race. With
        SQLite (maybe shared by several workers) the take is one conditional UPDATE; other
        stores' locks hold across workers already."""
        store = self.api.store()
        async with store.lock(key):
            session = await self.api.load(key)
            if check_holder(session, agent) == agent:
                return session
            claim = getattr(store, "set_state_if", None)
            if claim is not None:
                won = await claim(key, {"handoff.status": "waiting", "handoff.agent": None},
                                  {"handoff.status": "active", "handoff.agent": agent,
                                   "handoff.taken_at": time.time()})
                session = await self.api.load(key)
                if not won:
                    check_holder(session, agent)  # 409 naming the winner
            else:
                take(session, agent)
                await store.save(session)
        await store.log_event(key, HANDOFF_TAKEN_EVENT, {"agent": agent, "via": via})
        await self.api.send(app, session, agent_message(f"{agent} joined the conversation.",
                                                        agent, kind="agent_joined"))
        await self.hub.publish(key, "taken", agent)
        return session

    async def take(self, request: web.Request) -> web.Response:
        agent, key, _ = await self._posted(request)
        return web.json_response(self._row(await self._take(request.app, agent, key)))

    async def reply(self, request: web.Request) -> web.Response:
        agent, key, data = await self._posted(request)
        text = str(text_field(data, "text", limit=MAX_REPLY_CHARS))
        await self._take(request.app, agent, key)
        delivered = await self.api.answer(request.app, agent, key, text)
        await self.hub.publish(key, "reply", agent)
        return web.json_response({"delivered": delivered})

    async def _leave(self, app: web.Application, agent: str, session: Session,
                     then: str) -> None:
        await self.api.send(app, session, agent_message(f"{agent} left the conversation. {then}"
                                                        .strip(), agent, kind="agent_left"))

    async def release(self, request: web.Request) -> web.Response:
        agent, key, _ = await self._posted(request)
        async with self.api.acting_on(agent, key) as doing:
            if doing.holder != agent:
                raise web.HTTPConflict(text='{"error": "take the conversation first"}',
                                       content_type="application/json")
            state = doing.session.state["handoff"]
            state.update(status="waiting", agent=None)
            state.pop("taken_at", None)
        await doing.log(HANDOFF_RETURNED_EVENT, {"agent": agent})
        await self._leave(request.app, agent, doing.session,
                          "Another member of the team will reply here.")
        await self.hub.publish(key, "returned", agent)
        return web.json_response(self._row(doing.session))

    async def resolve(self, request: web.Request) -> web.Response:
        agent, key, _ = await self._posted(request)
        session = await self.api.load(key)
        if check_holder(session, agent) == agent:  # 409 while another agent holds it
            await self._leave(request.app, agent, session, "")
        delivered = await self.api.hand_back(request.app, agent, key, HANDOFF_RESOLVED_EVENT)
        await self.hub.publish(key, "resolved", agent)
        return web.json_response({"id": key, "status": "bot", "delivered": delivered})

    async def note(self, request: web.Request) -> web.Response:
        agent, key, data = await self._posted(request)
        text = str(text_field(data, "text", limit=MAX_NOTE_CHARS))
        check_holder(await self.api.load(key), agent)
        await self.api.store().log_event(key, AGENT_NOTE_EVENT, {"agent": agent, "text": text})
        await self.hub.publish(key, "note", agent)
        return web.json_response({"noted": True})

    async def sign_out(self, request: web.Request) -> web.Response:
        signed = await acting(request)
        await request.app[SIGN_INS].close(signed)
        await self.hub.sign_out(signed)
        response = web.json_response({"signed_out": signed.agent})
        response.del_cookie(COOKIE, path="/desk")
        return response
