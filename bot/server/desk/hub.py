"""Live updates for the desk: ``GET /desk/socket`` (a signed-in agent's WebSocket).

The server pushes one frame per change, ``{"type": "changed", "id": <conversation>,
"what": ..., "agent": ...}``: ``what`` is ``message`` (a customer wrote in a handed-off
conversation, or handed it off), ``taken``, ``returned`` (back in the waiting queue),
``resolved``, ``ended`` (the customer ended the chat), ``reply`` or ``note``. Frames carry no
customer text: the page fetches what it shows over HTTP with its sign-in. The desk sends
nothing on the socket; its actions are POSTs. Updates reach the agents connected to this
worker (docs/desk.md).

Presence: an agent is online while a desk of theirs is connected; every desk gets
``{"type": "presence", "online": [names]}`` when that changes, and :attr:`DeskHub.on_online`
(assignment) hears of an agent who came online.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import WSCloseCode, web

from bot.server.desk.access import check_origin, signed_in
from bot.server.desk.signins import SignedIn
from foundation.messages import BotReply, ReplyStream

log = logging.getLogger(__name__)
HEARTBEAT_S = 30.0


class DeskHub:
    """The desk's open sockets in this worker, and what they are told."""

    def __init__(self) -> None:
        self.sockets: dict[web.WebSocketResponse, SignedIn] = {}
        self.on_handoff: Callable[[str], Coroutine[Any, Any, object]] | None = None
        self.on_online: Callable[[str], Coroutine[Any, Any, object]] | None = None  # assignment
        self._tasks: set[asyncio.Task[object]] = set()

    def online(self) -> list[str]:
        """The agents with a desk open on this worker, by name."""
        return sorted({s.agent for ws, s in self.sockets.items() if not ws.closed})

    def later(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` once the current turn lets go of its conversation (kept until
        done, awaited on shutdown)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("desk work failed: %s", task.exception())

    async def _presence(self) -> None:
        text = json.dumps({"type": "presence", "online": self.online()})
        await asyncio.gather(*(ws.send_str(text) for ws in list(self.sockets) if not ws.closed),
                             return_exceptions=True)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Upgrade a signed-in agent's request (401 without a sign-in, 403 from another
        origin) and keep the socket until it closes."""
        signed = await signed_in(request)
        check_origin(request)
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096)
        await ws.prepare(request)
        came = signed.agent not in self.online()
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
            await self._presence()
        return ws

    async def publish(self, key: str, what: str, agent: str | None = None) -> None:
        """Tell every open desk that conversation ``key`` changed."""
        text = json.dumps({"type": "changed", "id": key, "what": what, "agent": agent})
        sockets = [ws for ws in self.sockets if not ws.closed]
        results = await asyncio.gather(*(ws.send_str(text) for ws in sockets),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionError):
                log.warning("a desk update was not sent: %s", result)

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

    async def sign_out(self, signed: SignedIn) -> None:
        """Close the sockets of a sign-in that ended."""
        await self._close([ws for ws, s in self.sockets.items() if s.key == signed.key],
                          b"signed out")

    async def close(self, _app: Any = None) -> None:
        """Close every socket and finish pending work (server shutdown)."""
        await self._close(list(self.sockets), b"server shutdown")
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    async def _close(sockets: list[web.WebSocketResponse], why: bytes) -> None:
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=why)
                               for ws in sockets), return_exceptions=True)
