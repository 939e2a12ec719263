"""A customer's own conversation, for the widget (the conversation's credential: its session
token, or an API token naming it; bot/server/callers.py)::

    GET  /webhooks/webchat/history   {"messages", "handoff", "agent", "user"}: what the
                                     customer has been sent so far, to show after a reload
                                     or on another device of an identified customer
    POST /webhooks/webchat/end       the customer ends the chat: a person holding it is let
                                     go, and the next message starts a new conversation

Ending keeps the old conversation as a ``chat_ended`` event (its history) and starts the
session afresh (a verified identity stays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bot.dialogue.handoff import HANDOFF_KEY, OUTBOX_KEY, drop_shown, handoff_status, release
from bot.server.agent_api import AgentDesk
from bot.server.callers import conversation_of
from bot.server.desk.hub import DeskHub
from bot.server.desk.transcript import citation, customer_turns
from bot.sessions.events import CHAT_ENDED_EVENT
from bot.sessions.store import Session
from channels.boundary import query_value
from retrieval.passages import Passage

PREFIX = "/webhooks/webchat"


class VisitorRoutes:
    """The routes above over the agent API's store and the desk's hub."""

    def __init__(self, api: AgentDesk, hub: DeskHub,
                 passages: Callable[[], Mapping[str, Passage]]) -> None:
        self.api = api
        self.hub = hub
        self.passages = passages

    def install(self, app: web.Application) -> None:
        app.add_routes([web.get(f"{PREFIX}/history", self.history),
                        web.post(f"{PREFIX}/end", self.end)])

    async def _session(self, request: web.Request, sender: object = None) -> Session:
        channel, stored = conversation_of(request, sender=sender, channel=None,
                                          channels=self.api.config.channels)
        return await self.api.store().get(f"{channel}:{stored}", channel=channel,
                                          sender=stored)

    async def history(self, request: web.Request) -> web.Response:
        session = await self._session(request, query_value(request, "sender") or None)
        passages = self.passages()
        messages = []
        for turn in customer_turns(session.history):
            item: dict[str, Any] = {k: turn[k] for k in ("role", "text", "ts", "kind", "agent")
                                    if turn.get(k) is not None}
            cited = [citation(str(c), passages) for c in turn.get("citations") or ()]
            item["citations"] = [{"passage_id": c["id"], "title": c["title"],
                                  "source": c["source"]} for c in cited
                                 if c.get("audience") != "agents"]
            messages.append(item)
        await self._shown(session, {m["text"] for m in messages if m.get("text")})
        state = session.state.get(HANDOFF_KEY) or {}
        handed = handoff_status(session) is not None
        return web.json_response({
            "messages": messages, "handoff": handed,
            "agent": state.get("agent") if handed else None,
            "user": session.state.get("user")}, headers={"Cache-Control": "no-store"})

    async def _shown(self, session: Session, texts: set[str]) -> None:
        """The history now shows ``texts``: their queued copies are not sent again with the
        customer's next message."""
        if not session.state.get(OUTBOX_KEY):
            return
        store = self.api.store()
        async with store.lock(session.key):
            fresh = await store.get(session.key, channel=session.channel, sender=session.sender)
            if drop_shown(fresh, texts):
                await store.save(fresh)

    async def end(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        store = self.api.store()
        async with store.lock(session.key):
            session = await store.get(session.key, channel=session.channel,
                                      sender=session.sender)
            status = handoff_status(session)
            agent = (session.state.get(HANDOFF_KEY) or {}).get("agent") if status else None
            if status is not None:
                release(session)
            ended = {"history": session.history, "handoff": status, "agent": agent}
            user = session.state.get("user")
            session.history, session.slots = [], {}
            session.state = {"user": user} if user else {}
            await store.save(session)
        await store.log_event(session.key, CHAT_ENDED_EVENT, ended)
        if status is not None:
            await self.hub.publish(session.key, "ended", agent)
        return web.json_response({"ended": True, "handoff": status})
