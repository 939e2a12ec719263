"""Find channel connectors by name: the built-in ones and third-party entry points.

Third-party packages add a connector with an entry point in the ``supportbot.channels``
group whose value is ``"package.module:ChannelClass"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from aiohttp import web

from channels.cors import ALLOWED_ORIGINS, allowed_origins
from foundation.messages import BotReply, ReplyStream, UserMessage
from foundation.settings import Where, build

ENTRY_POINT_GROUP = "supportbot.channels"
BUILTIN: dict[str, str] = {
    "rest": "channels.rest:RestChannel",
    "webhook": "channels.webhook:WebhookChannel",
    "websocket": "channels.websocket:WebSocketChannel",
    "webchat": "channels.webchat:WebChatChannel",
    "telegram": "channels.telegram:TelegramChannel",
    "slack": "channels.slack:SlackChannel",
    "email": "channels.email:EmailChannel",
    "twilio": "channels.twilio_sms:TwilioSmsChannel",
    "teams": "channels.teams:TeamsChannel",
    "whatsapp": "channels.whatsapp:WhatsAppChannel",
    "messenger": "channels.messenger:MessengerChannel",
    "instagram": "channels.messenger:InstagramChannel",
    "chatwoot": "channels.chatwoot:ChatwootChannel",
}

OnMessage = Callable[[UserMessage], Awaitable[BotReply]]
OnStream = Callable[[UserMessage], ReplyStream]
CHANNELS: web.AppKey[dict[str, Any]] = web.AppKey("channels", dict)


class Channel(Protocol):
    """A connector: it turns requests into :class:`UserMessage` and replies into responses.

    ``on_message`` answers a message; ``on_stream`` gives the reply as a
    :class:`~foundation.messages.ReplyStream` (its text deltas, then ``.reply``). These two
    callbacks are all a channel sees of the core.

    Optional members, used when present (see :func:`can_push`):

    - ``async push(sender: str, reply: BotReply) -> None``: deliver a message nobody asked
      for (a human agent's reply) to ``sender``; raises :class:`~foundation.errors.ChannelError`
      when it cannot (``webhook``, ``telegram``, ``slack``, and ``websocket``/``webchat``
      while the sender is connected).
    - ``local_connections: ClassVar[bool]``: True when ``push`` reaches only the connections
      this process holds (``websocket``, ``webchat``): with several workers, the server asks
      the others to push too (see :func:`pushes_to_local_connections`).
    - ``async start() -> None``: called once the server has started (the bot is loaded), for
      a channel that reads on its own (``email`` reads its mailbox); it must not block.
    - ``async close() -> None``: called on server shutdown (finish deliveries, close sockets).
    - ``allowed_origins: tuple[str, ...]``: browser origins allowed to call the bot.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[Any]]

    def __init__(self, settings: Any, *, on_message: OnMessage, on_stream: OnStream) -> None: ...

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        """The routes this channel serves, under ``prefix`` (``/webhooks/<name>``)."""
        ...


def available() -> dict[str, str]:
    """Channel name -> ``module:Class`` for every connector that can be used."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def channel_class(name: str) -> type[Channel]:
    """Import the connector registered as ``name``; unknown names list the valid ones."""
    known = available()
    if name not in known:
        raise KeyError(f"unknown channel {name!r}; available channels: {', '.join(sorted(known))}")
    module_name, _, attr = known[name].partition(":")
    cls: type[Channel] = getattr(importlib.import_module(module_name), attr)
    return cls


def channel_settings(name: str, raw: Any, where: Where) -> Any:
    """Validate the YAML settings of channel ``name`` into its ``Settings`` dataclass."""
    try:
        cls = channel_class(name)
    except KeyError as exc:
        raise where.error(str(exc.args[0])) from exc
    return build(cls.Settings, {} if raw is None else raw, where)


def validate_channel_settings(channels: Mapping[str, Any], where: Where) -> None:
    """Check every configured channel's settings at load time."""
    for name, raw in channels.items():
        channel_settings(name, raw, where.key(channels, name))


PushFn = Callable[[str, BotReply], Awaitable[None]]


def can_push(channel: object) -> PushFn | None:
    """The channel's optional ``push`` method, or ``None`` when it cannot push."""
    push = getattr(channel, "push", None)
    return push if callable(push) else None


def pushes_to_local_connections(channel: object) -> bool:
    """Whether the channel's ``push`` reaches only connections held by this process."""
    return can_push(channel) is not None and getattr(channel, "local_connections", False) is True


def install_channels(app: web.Application, channels: Mapping[str, Channel], *,
                     cors_origins: tuple[str, ...] = ()) -> None:
    """Keep the app's channels (``app[CHANNELS]``), their allowed origins, start them on
    startup and close them on shutdown."""
    app[CHANNELS] = dict(channels)
    app[ALLOWED_ORIGINS] = allowed_origins(
        cors_origins, *(getattr(c, "allowed_origins", ()) for c in channels.values()))

    async def start_channels(app: web.Application) -> None:
        for channel in app[CHANNELS].values():
            start = getattr(channel, "start", None)
            if callable(start):
                await start()

    async def close_channels(app: web.Application) -> None:
        for channel in app[CHANNELS].values():
            close = getattr(channel, "close", None)
            if callable(close):
                await close()

    app.on_startup.append(start_channels)  # after the app's cleanup contexts (the runtime)
    app.on_shutdown.append(close_channels)
