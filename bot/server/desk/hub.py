"""Live updates for the desk: ``GET /desk/socket`` (a signed-in agent's WebSocket).

The server pushes one frame per change, ``{"type": "changed", "id": <conversation>,
"what": ..., "agent": ...}``: ``what`` is ``message`` (a customer wrote in a handed-off
conversation, or handed it off), ``taken``, ``returned`` (back in the waiting queue),
``resolved``, ``ended`` (the customer ended the chat), ``reply``, ``note`` or ``resync``
(``id`` empty: the workers lost each other for a while; read everything again). Frames carry
no customer text: the page fetches what it shows over HTTP with its sign-in. The desk sends
nothing on the socket; its actions are POSTs.

Presence: an agent is online while a desk of theirs is connected; every desk gets
``{"type": "presence", "online": [names]}`` when that changes, and :attr:`DeskHub.on_online`
(assignment) hears of an agent who came online.

Several workers (``sessions.store: redis``): the hub publishes every change and message for
a customer on the shared channel (:mod:`~bot.server.desk.relay`) and relays the other
workers' to its own desks and customers; presence is kept in Redis
(:mod:`~bot.server.desk.presence`). Without Redis it all stays in this worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import WSCloseCode, web

from bot.server.desk.access import check_origin, signed_in
from bot.server.desk.presence import RENEW_S, SharedPresence
from bot.server.desk.relay import DeskRelay, Event
from bot.server.desk.signins import SignedIn
from foundation.errors import ChannelError
from foundation.messages import BotReply, ReplyStream

log = logging.getLogger(__name__)
HEARTBEAT_S = 30.0
Push = Callable[[str, str, BotReply], Awaitable[bool]]  # (channel, sender, reply) -> pushed


async def no_push(channel: str, sender: str, reply: BotReply) -> bool:
    return False


def nowhere(channel: str) -> bool:
    return False


class DeskHub:
    """The desk's open sockets in this worker, and what they are told; with a ``relay``, the
    other workers' news too."""

    def __init__(self, relay: DeskRelay | None = None, push: Push = no_push,
                 local: Callable[[str], bool] = nowhere) -> None:
        self.sockets: dict[web.WebSocketResponse, SignedIn] = {}
        self.on_handoff: Callable[[str], Coroutine[Any, Any, object]] | None = None
        self.on_online: Callable[[str], Coroutine[Any, Any, object]] | None = None  # assignment
        self.push = push  # to a customer connected to this worker (ChannelError: not here)
        self.local = local  # whether a channel's push reaches only this worker's connections
        self.relay = relay
        self.shared = SharedPresence(relay) if relay is not None else None
        self._shown: list[str] | None = None  # the presence the desks were told last
        self._tasks: set[asyncio.Task[object]] = set()
        self._renewing: asyncio.Task[None] | None = None
        self._closing = False
        if relay is not None:
            relay.on_event, relay.on_push, relay.on_connect = \
                self._relayed, self._push_here, self._reconnected

    def online(self) -> list[str]:
        """The agents with a desk open on this worker, by name."""
        return sorted({s.agent for ws, s in self.sockets.items() if not ws.closed})

    async def everyone(self) -> list[str]:
        """The agents with a desk open on any worker (this worker's alone without Redis)."""
        here = set(self.online())
        shared = await self.shared.online() \
            if self.shared is not None and not self._closing else None
        return sorted(here | (shared or set()))

    async def start(self, _app: Any = None) -> None:
        """Join the other workers (with a relay): subscribe, renew presence."""
        if self.relay is not None:
            self.relay.start()
            self._renewing = asyncio.get_running_loop().create_task(self._renew())

    def later(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` in the background, kept until done and awaited on shutdown: after
        the current turn lets go of its conversation, or beyond a socket handler that a
        lost client cancels."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("desk work failed: %s", task.exception())

    async def _send(self, text: str) -> None:
        sockets = [ws for ws in self.sockets if not ws.closed]
        results = await asyncio.gather(*(ws.send_str(text) for ws in sockets),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.warning("a desk update was not sent: %s", result)

    async def _show_presence(self) -> None:
        online = await self.everyone()
        self._shown = online
        await self._send(json.dumps({"type": "presence", "online": online}))

    async def _presence(self) -> None:
        """This worker's agents changed: tell Redis, the other workers and the desks here."""
        if self.shared is not None and self.relay is not None and not self._closing \
                and await self.shared.write(self.online()):
            await self.relay.publish({"type": "presence"})
        await self._show_presence()

    async def _renew(self) -> None:
        """Keep this worker's agents alive in Redis; tell the desks when presence changed
        (an agent of a dead worker lapsed)."""
        assert self.shared is not None
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self.shared.write(self.online())
                if await self.everyone() != self._shown:
                    await self._show_presence()
            except Exception:  # a bug here must not end the renewals
                log.exception("renewing the desk's presence failed")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Upgrade a signed-in agent's request (401 without a sign-in, 403 from another
        origin) and keep the socket until it closes."""
        signed = await signed_in(request)
        check_origin(request)
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096)
        await ws.prepare(request)
        came = signed.agent not in await self.everyone()
        self.sockets[ws] = signed
        try:
            await ws.send_str(json.dumps({"type": "hello", "agent": signed.agent}))
            await self._presence()
            if came and self.on_online is not None:
                self.later(self.on_online(signed.agent))
            async for _ in ws:
                pass  # nothing to read: actions come as POSTs
        finally:
            self.sockets.pop(ws, None)
            self.later(self._presence())  # not in this handler: a lost client cancels it
        return ws

    async def publish(self, key: str, what: str, agent: str | None = None) -> None:
        """Tell every open desk (of every worker) that conversation ``key`` changed."""
        event = {"type": "changed", "id": key, "what": what, "agent": agent}
        await self._send(json.dumps(event))
        if self.relay is not None:
            await self.relay.publish(event)

    async def _relayed(self, event: Event) -> None:
        """An event of another worker, for the desks here."""
        if event.get("type") == "changed":
            await self._send(json.dumps({k: event.get(k) for k in
                                         ("type", "id", "what", "agent")}))
        elif event.get("type") == "presence":
            await self._show_presence()

    async def _reconnected(self) -> None:
        """(Re)joined the other workers: presence again, and the desks read everything
        (events of other workers may have been missed)."""
        await self._presence()
        await self._send(json.dumps({"type": "changed", "id": "", "what": "resync",
                                     "agent": None}))

    async def deliver(self, channel: str, sender: str, reply: BotReply) -> bool:
        """Push a person's message to the customer, wherever their connection is: this
        worker (every open connection of theirs) or, with a relay, another one. True when
        some connection got it (False: the caller queues it); without a relay, a customer
        not connected here is a :class:`ChannelError` as before."""
        if self.relay is None or not self.local(channel):
            return await self.push(channel, sender, reply)
        try:
            pushed = await self.push(channel, sender, reply)
        except ChannelError:  # not connected to this worker
            pushed = False
        relayed = await self.relay.push(channel, sender, reply, wait=not pushed)
        return pushed or relayed

    async def _push_here(self, channel: str, sender: str, reply: BotReply) -> bool:
        """Another worker's message for a customer: pushed if connected here."""
        if not self.local(channel):
            return False
        with contextlib.suppress(ChannelError):
            return await self.push(channel, sender, reply)
        return False

    def watch(self, key: str, stream: ReplyStream) -> ReplyStream:
        """``stream`` (a customer's turn in conversation ``key``), telling the desks once
        its reply is saved when the conversation is (or just got) handed off."""

        async def tell(reply: BotReply) -> BotReply:
            if reply.handoff:
                await self.publish(key, "message")
                if self.on_handoff is not None and reply.kind != "agent":
                    self.later(self.on_handoff(key))  # after the turn has saved it
            return reply

        return stream.on_reply(tell)

    async def last_assigned(self) -> str | None:
        """Whom round-robin assignment chose last on any worker (None: unknown here)."""
        return await self.shared.last_assigned() if self.shared is not None else None

    async def assigned(self, agent: str) -> None:
        if self.shared is not None:
            await self.shared.assigned(agent)

    async def sign_out(self, signed: SignedIn) -> None:
        """Close the sockets of a sign-in that ended."""
        await self._close([ws for ws, s in self.sockets.items() if s.key == signed.key],
                          b"signed out")

    async def close(self, _app: Any = None) -> None:
        """Close every socket and finish pending work (server shutdown); leave the other
        workers."""
        self._closing = True
        await self._close(list(self.sockets), b"server shutdown")
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)
        if self.shared is not None and self.relay is not None:
            if await self.shared.write([]):
                await self.relay.publish({"type": "presence"})
            await self.relay.close()

    @staticmethod
    async def _close(sockets: list[web.WebSocketResponse], why: bytes) -> None:
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=why)
                               for ws in sockets), return_exceptions=True)
