"""REST channel: ``POST /webhooks/rest`` with ``{"sender": ..., "message": ...}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from bot.errors import BadRequest
from bot.messages import UserMessage
from channels.http import read_json
from channels.registry import OnMessage, OnStream

MAX_SENDER_CHARS = 200


@dataclass(frozen=True)
class RestSettings:
    """The REST channel has no settings yet; the section may be empty."""


def sender_id(data: dict[str, Any]) -> str:
    """The ``sender`` field of a request, validated."""
    sender = data.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest("'sender' is required and must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"'sender' is too long (limit {MAX_SENDER_CHARS} characters)")
    return sender.strip()


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
        data = await read_json(request)
        sender = sender_id(data)
        if "message" not in data:
            raise BadRequest("'message' is required")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise BadRequest("'metadata' must be a JSON object")
        reply = await self.on_message(UserMessage(sender=sender, text=data["message"],  # type: ignore[arg-type]
                                                  channel=self.name, metadata=metadata))
        return web.json_response([reply.to_dict(recipient_id=sender)])
