"""WebSocket channel: ``GET /webhooks/websocket`` upgrades to a streaming chat connection.

The client first gets a session token (``POST /webhooks/websocket/session``, see
:mod:`channels.visitors`) and connects with ``?token=<token>``; the connection belongs to
the token's sender (a frame naming another sender gets an error frame). Frames are JSON
text. The client sends::

    {"type": "message", "message": "where is my card?", "metadata": {}}
    {"type": "hello"}                      # optional: answered {"type": "ready", "sender"}

and gets, per message, ``{"type": "typing"}``, one ``{"type": "delta", "text": ...}`` per
chunk of the reply as it is produced, then ``{"type": "reply", ...BotReply.to_dict()}``.
A bad frame gets ``{"type": "error", "error": ...}`` and the connection stays open.
Sessions are keyed by ``websocket:<sender>``, so reconnecting with the same token (or a
renewed one) continues the conversation.
Messages of one connection are answered in order. ``push`` sends a reply to every open
connection of a sender (for a human agent's messages).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import WSCloseCode, WSMsgType, web

from channels.boundary import parse_json
from channels.http import message_fields
from channels.registry import OnMessage, OnStream
from channels.visitors import (
    Visitor,
    own_sender,
    session_route,
    visitor_metadata,
    visitor_of,
)
from foundation.checks import between, check, positive
from foundation.errors import BotError, ChannelError
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
HARD_LIMIT_FACTOR = 4  # frames past this many times the body limit close the connection


@dataclass(frozen=True)
class WebSocketSettings:
    """Keep-alive ping interval and how many messages may wait per connection."""

    heartbeat_s: float = check(positive, default=30.0)
    max_pending: int = check(between(1, 100), default=8)


def frame(frame_type: str, /, **data: Any) -> str:
    """One JSON frame ``{"type": frame_type, ...data}``."""
    return json.dumps({"type": frame_type, **data}, ensure_ascii=False)


class SocketHub:
    """Serves chat websockets whose sessions are keyed ``<channel>:<sender>``."""

    def __init__(self, channel: str, on_stream: OnStream, settings: WebSocketSettings) -> None:
        self.channel = channel
        self.on_stream = on_stream
        self.settings = settings
        self.clients: dict[str, set[web.WebSocketResponse]] = defaultdict(set)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Upgrade ``request`` (401 without a valid session token) and serve the
        connection, bound to the token's sender, until it closes."""
        visitor = visitor_of(request, self.channel)
        limit = request.client_max_size
        ws = web.WebSocketResponse(heartbeat=self.settings.heartbeat_s,
                                   max_msg_size=HARD_LIMIT_FACTOR * limit)
        await ws.prepare(request)
        queue: asyncio.Queue[UserMessage] = asyncio.Queue(self.settings.max_pending)
        worker = asyncio.get_running_loop().create_task(self._answer(ws, queue))
        self.clients[visitor.sender].add(ws)  # pushed agent messages reach it at once
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._receive(ws, msg.data, limit, visitor, queue)
                    except Exception:  # a bug must not drop the connection
                        log.exception("websocket frame failed for %s", self.channel)
                        await self._error(ws, "the frame could not be read (internal error)")
                elif msg.type == WSMsgType.BINARY:
                    await self._error(ws, "binary frames are not supported; send JSON text")
        finally:
            worker.cancel()
            self.clients[visitor.sender].discard(ws)
            if not self.clients[visitor.sender]:
                del self.clients[visitor.sender]
        return ws

    async def _receive(self, ws: web.WebSocketResponse, text: str, limit: int,
                       visitor: Visitor, queue: asyncio.Queue[UserMessage]) -> None:
        if len(text.encode("utf-8")) > limit:
            await self._error(ws, f"message too large (limit {limit} bytes)")
            return
        try:
            data = parse_json(text.encode("utf-8"))
            kind = data.get("type")
            if kind not in ("message", "hello"):
                await self._error(ws, f"unknown frame type {kind!r}; expected 'message' or "
                                      "'hello'")
                return
            sender = own_sender(visitor, data.get("sender"))
            if kind == "hello":
                await ws.send_str(frame("ready", sender=sender))
                return
            sender, message, metadata = message_fields({**data, "sender": sender})
        except ChannelError as exc:  # BadRequest: bad JSON or fields
            await self._error(ws, str(exc))
            return
        try:
            queue.put_nowait(UserMessage(sender=sender, text=message,  # type: ignore[arg-type]
                                         channel=self.channel,
                                         metadata=visitor_metadata(visitor, metadata)))
        except asyncio.QueueFull:
            await self._error(ws, f"too many messages waiting (limit {queue.maxsize}); "
                                  "wait for the replies")

    async def _answer(self, ws: web.WebSocketResponse,
                      queue: asyncio.Queue[UserMessage]) -> None:
        while True:
            message = await queue.get()
            try:
                await ws.send_str(frame("typing"))
                stream = self.on_stream(message)
                async for delta in stream:
                    await ws.send_str(frame("delta", text=delta))
                assert stream.reply is not None
                await ws.send_str(frame("reply", **stream.reply.to_dict(message.sender)))
            except ChannelError as exc:  # bad message, rate limit
                retry = getattr(exc, "retry_after", None)
                await self._error(ws, str(exc), **({"retry_after": retry} if retry else {}))
            except BotError as exc:  # turn timeout, store failure
                log.warning("websocket turn failed for %s: %s", self.channel, exc)
                await self._error(ws, str(exc))
            except ConnectionError:
                return  # the client went away mid-reply
            except Exception:  # a bug must not leave the connection silently dead
                log.exception("websocket turn failed for %s", self.channel)
                await self._error(ws, "the bot could not answer (internal error)")

    @staticmethod
    async def _error(ws: web.WebSocketResponse, message: str, **extra: Any) -> None:
        if not ws.closed:
            await ws.send_str(frame("error", error=message, **extra))

    async def push(self, sender: str, reply: BotReply) -> None:
        """Send ``reply`` to the open connections of ``sender``; ChannelError if there is none."""
        sockets = [ws for ws in self.clients.get(sender, ()) if not ws.closed]
        if not sockets:
            raise ChannelError(f"{self.channel}: sender {sender!r} is not connected")
        for ws in sockets:
            await ws.send_str(frame("reply", **reply.to_dict(sender)))

    async def close(self) -> None:
        """Close every connection (server shutdown)."""
        sockets = [ws for group in self.clients.values() for ws in group]
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
                               for ws in sockets), return_exceptions=True)


class WebSocketChannel:
    """Streaming chat over a websocket; see the module docstring for the protocol."""

    name: ClassVar[str] = "websocket"
    Settings: ClassVar[type[Any]] = WebSocketSettings
    local_connections: ClassVar[bool] = True  # push reaches this process's sockets only

    def __init__(self, settings: WebSocketSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.hub = SocketHub(self.name, on_stream, settings)

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.get(prefix, self.hub.handle), session_route(prefix, self.name)]

    async def push(self, sender: str, reply: BotReply) -> None:
        await self.hub.push(sender, reply)

    async def close(self) -> None:
        await self.hub.close()
