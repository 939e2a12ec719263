"""Web chat channel: the back end of the embeddable widget (``/webchat/widget.js``).

A website embeds the bot with one tag (see docs/channels.md)::

    <script src="https://bot.example.com/webchat/widget.js" data-title="Help"></script>

The widget reads its look from ``GET /webhooks/webchat/config`` (these settings; the tag's
``data-*`` attributes override them), streams replies over the websocket
``/webhooks/webchat/ws`` (the protocol of :mod:`channels.websocket`) and falls back to
``POST /webhooks/webchat`` (the REST protocol) when websockets are unavailable. Every call
carries the visitor's session token from ``POST /webhooks/webchat/session``
(:mod:`channels.visitors`), which fixes the sender: both transports key sessions
``webchat:<sender>``, so a conversation survives switching between them, and the page chat
at ``/`` and the widget on that page share it; the widget keeps the token in the page's
``localStorage``. Browsers may call these
endpoints only from ``allowed_origins`` (and ``server.cors_origins``).

With ``identity_secret: ${ENV}``, the host site may say who its signed-in customer is: the
widget's ``data-user-id``, ``data-user-hash`` (the hex HMAC-SHA256 of the id under that
secret, computed by the site's server) and ``data-user-*`` attributes go to ``/session``
(:mod:`channels.visitors`); a forged or unsigned identity is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aiohttp import web

from channels.cors import origins_problem
from channels.registry import OnMessage, OnStream
from channels.rest import answer_request
from channels.visitors import identity_secret_problem, session_route, visitor_of
from channels.websocket import SocketHub, WebSocketSettings
from foundation.checks import check
from foundation.messages import BotReply


def hex_color(value: Any) -> str | None:
    """Config check: a CSS hex colour (``#1d4ed8`` or ``#fff``)."""
    return None if re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value) else \
        "must be a hex colour like '#1d4ed8'"


@dataclass(frozen=True)
class WebChatSettings:
    """The widget's look and the websites allowed to embed it."""

    title: str = "Chat with us"
    greeting: str = "Hi! How can I help you today?"
    greeting_identified: str = "Hi {name}! How can I help you today?"  # {name}: the customer's
    placeholder: str = "Type your question…"
    color: str = check(hex_color, default="#1d4ed8")
    text_color: str = check(hex_color, default="#ffffff")
    position: Literal["right", "left"] = "right"
    streaming: bool = True  # False: the widget uses plain HTTP only
    allowed_origins: tuple[str, ...] = check(origins_problem, default=())
    identity_secret: str | None = check(identity_secret_problem, default=None)  # signed customers
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)


class WebChatChannel:
    """Serves the widget's configuration, websocket and HTTP fallback."""

    name: ClassVar[str] = "webchat"
    Settings: ClassVar[type[Any]] = WebChatSettings
    local_connections: ClassVar[bool] = True  # push reaches this process's sockets only

    def __init__(self, settings: WebChatSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.hub = SocketHub(self.name, on_stream, settings.websocket)
        self.allowed_origins = settings.allowed_origins  # read by the CORS middleware

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.get(f"{prefix}/config", self.config), web.post(prefix, self.receive),
                web.get(f"{prefix}/ws", self.hub.handle),
                session_route(prefix, self.name, self.settings.identity_secret)]

    async def config(self, request: web.Request) -> web.Response:
        s = self.settings
        return web.json_response({
            "title": s.title, "greeting": s.greeting, "placeholder": s.placeholder,
            "greeting_identified": s.greeting_identified,
            "color": s.color, "text_color": s.text_color, "position": s.position,
            "streaming": s.streaming, "identities": bool(s.identity_secret)},
            headers={"Cache-Control": "no-cache"})

    async def receive(self, request: web.Request) -> web.Response:
        visitor = visitor_of(request, self.name)
        return await answer_request(request, channel=self.name, on_message=self.on_message,
                                    visitor=visitor)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Send ``reply`` to the sender's open widget; ChannelError when it is not open."""
        await self.hub.push(sender, reply)

    async def close(self) -> None:
        await self.hub.close()
