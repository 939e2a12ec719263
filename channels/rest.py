"""REST channel: ``POST /webhooks/rest`` with ``{"sender": ..., "message": ...}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from bot.messages import UserMessage
from channels.http import MAX_SENDER_CHARS, message_fields, read_json, sender_id
from channels.registry import OnMessage, OnStream

__all__ = ["MAX_SENDER_CHARS", "RestChannel", "RestSettings", "answer_request", "sender_id"]


@dataclass(frozen=True)
class RestSettings:
    """The REST channel has no settings yet; the section may be empty."""


async def answer_request(request: web.Request, *, channel: str,
                         on_message: OnMessage) -> web.Response:
    """Answer one ``{"sender", "message", "metadata"?}`` request as ``[reply]`` JSON."""
    sender, text, metadata = message_fields(await read_json(request))
    reply = await on_message(UserMessage(sender=sender, text=text,  # type: ignore[arg-type]
                                         channel=channel, metadata=metadata))
    return web.json_response([reply.to_dict(recipient_id=sender)])


class RestChannel:
    """Synchronous request/response: the replies come back in the HTTP response."""

    name: ClassVar[str] = "rest"
    Settings: ClassVar[type[Any]] = RestSettings

    def __init__(self, settings: RestSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        return await answer_request(request, channel=self.name, on_message=self.on_message)
