"""REST channel: ``POST /webhooks/rest`` with ``{"sender": ..., "message": ...}``.

For servers, not browsers: the caller names the sender, so every request needs one of
``security.api_tokens`` (``Authorization: Bearer <token>`` or ``X-Api-Token``). ``auth:
none`` opens it to anyone who can reach it, for local development only (a warning is
logged at start-up). Browsers use the ``webchat`` channel and its session tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohttp import web

from channels.http import (
    API_TOKENS,
    MAX_SENDER_CHARS,
    check_token,
    message_fields,
    read_json,
    sender_id,
)
from channels.registry import OnMessage, OnStream
from channels.visitors import Visitor, own_sender, visitor_metadata
from foundation.messages import UserMessage

__all__ = ["MAX_SENDER_CHARS", "RestChannel", "RestSettings", "answer_request", "sender_id"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestSettings:
    """Who may call: holders of an API token (``token``), or anyone (``none``)."""

    auth: Literal["token", "none"] = "token"


async def answer_request(request: web.Request, *, channel: str, on_message: OnMessage,
                         visitor: Visitor | None = None) -> web.Response:
    """Answer one ``{"sender", "message", "metadata"?}`` request as ``[reply]`` JSON
    (with a ``visitor``, the sender is the visitor's and the body may omit it, and only its
    token says who the customer is)."""
    data = await read_json(request)
    if visitor is not None:
        data = {**data, "sender": own_sender(visitor, data.get("sender"))}
    sender, text, metadata = message_fields(data)
    if visitor is not None:
        metadata = visitor_metadata(visitor, metadata)
    reply = await on_message(UserMessage(sender=sender, text=text,  # type: ignore[arg-type]
                                         channel=channel, metadata=metadata))
    return web.json_response([reply.to_dict(recipient_id=sender)])


def rest_is_open(channels: dict[str, Any]) -> bool:
    """Whether the configured channels include a REST channel with ``auth: none``."""
    raw = channels.get("rest")
    return isinstance(raw, dict) and raw.get("auth") == "none"


class RestChannel:
    """Synchronous request/response: the replies come back in the HTTP response."""

    name: ClassVar[str] = "rest"
    Settings: ClassVar[type[Any]] = RestSettings

    def __init__(self, settings: RestSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        if settings.auth == "none":
            log.warning("the REST channel has auth: none: anyone who can reach it may speak "
                        "as any sender; use it for local development only")

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        if self.settings.auth == "token":
            tokens: tuple[str, ...] = request.config_dict.get(API_TOKENS) or ()
            check_token(request, tokens,
                        disabled="set security.api_tokens, or auth: none for local "
                        "development, in the rest channel")
        return await answer_request(request, channel=self.name, on_message=self.on_message)
