"""Outgoing-webhook channel: signed requests in, signed replies POSTed to a callback URL.

``POST /webhooks/webhook`` takes ``{"sender", "message", "metadata"?, "id"?}`` signed as
described in :mod:`channels.signing` (``X-Bot-Timestamp``, ``X-Bot-Signature``). It answers
``202 {"status": "accepted", "id": ...}`` at once; the reply follows as a signed POST to
``callback_url``::

    {"id": "<delivery id>", "type": "reply", "in_reply_to": "<id>",
     "recipient_id": "<sender>", ...BotReply}
    {"id": "<delivery id>", "type": "error", "in_reply_to": "<id>",
     "recipient_id": "<sender>", "error": "..."}

Deliveries are retried with exponential backoff on connection errors, timeouts, 429 and
5xx (``retry``); a delivery that still fails is logged as an error. Every retry of one
delivery carries the same ``id``, also sent as the ``Idempotency-Key`` header, so the
receiver can drop a duplicate (one it answered although our side saw a timeout); different
deliveries have different ids. ``rate_limit`` (none by default) paces the callbacks.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from channels.boundary import parse_json
from channels.delivery import Outbox, RetryPolicy
from channels.http import checked_text, message_fields, unauthorized
from channels.pacing import RateLimit
from channels.registry import OnMessage, OnStream
from channels.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReplayCache,
    SignatureError,
    signature_headers,
    verify,
)
from foundation.checks import check, http_url, positive
from foundation.errors import BadRequest, BotError
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
MIN_SECRET_CHARS = 16
MAX_ID_CHARS = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the IETF httpapi draft's name, as Stripe's and others


def strong_secret(value: Any) -> str | None:
    """Config check: a shared secret long enough to resist guessing."""
    if len(value) < MIN_SECRET_CHARS:
        return f"must be at least {MIN_SECRET_CHARS} characters (use a random string)"
    return None


@dataclass(frozen=True)
class WebhookSettings:
    """Where replies go, the shared signing secret, and how deliveries are retried."""

    callback_url: str = check(http_url)
    secret: str = check(strong_secret)
    window_s: float = check(positive, default=300.0)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # the receiver is yours: none


class WebhookChannel:
    """Asynchronous, signed request/reply for server-to-server integrations."""

    name: ClassVar[str] = "webhook"
    Settings: ClassVar[type[Any]] = WebhookSettings

    def __init__(self, settings: WebhookSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.replays = ReplayCache(settings.window_s)
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit,
                             idempotency_header=IDEMPOTENCY_HEADER)

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    def check_signature(self, request: web.Request, body: bytes) -> None:
        """Raise 401 unless ``body`` is signed with the secret, fresh and not replayed."""
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            verify(self.settings.secret, body, signature=signature,
                   timestamp=request.headers.get(TIMESTAMP_HEADER),
                   window=self.settings.window_s)
            self.replays.check_and_add(signature or "")
        except SignatureError as exc:
            raise unauthorized(str(exc)) from exc

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.check_signature(request, body)
        data = parse_json(body)
        sender, raw_text, metadata = message_fields(data)
        text = checked_text(request, raw_text)
        given = data.get("id")
        if given is not None and (not isinstance(given, str) or len(given) > MAX_ID_CHARS):
            raise BadRequest(f"'id' must be a string of at most {MAX_ID_CHARS} characters")
        message_id = given or uuid.uuid4().hex
        message = UserMessage(sender=sender, text=text, channel=self.name,
                              metadata={**metadata, "message_id": message_id})
        self.outbox.spawn(self._answer(message, message_id), name=f"reply to {message_id}")
        return web.json_response({"status": "accepted", "id": message_id}, status=202)

    async def _answer(self, message: UserMessage, message_id: str) -> None:
        payload: dict[str, Any]
        try:
            reply = await self.on_message(message)
            payload = {"type": "reply", "in_reply_to": message_id,
                       **reply.to_dict(recipient_id=message.sender)}
        except BotError as exc:
            payload = {"type": "error", "in_reply_to": message_id,
                       "recipient_id": message.sender, "error": str(exc)}
        except Exception:  # a bug: the caller still hears that the message went unanswered
            log.exception("webhook: the turn for message %s failed", message_id)
            payload = {"type": "error", "in_reply_to": message_id,
                       "recipient_id": message.sender,
                       "error": "the bot could not answer (internal error)"}
        await self.outbox.attempt(self.deliver(payload), about=f"message {message_id}")

    async def deliver(self, payload: dict[str, Any]) -> None:
        """POST ``payload`` to the callback URL, signed, with retries; its ``id`` is the
        delivery's idempotency key (in the signed body and the ``Idempotency-Key`` header)."""
        secret, key = self.settings.secret, uuid.uuid4().hex
        await self.outbox.post(self.settings.callback_url, {"id": key, **payload}, key=key,
                               what="webhook callback", to=payload.get("recipient_id"),
                               headers_for=lambda body: signature_headers(secret, body))

    async def push(self, sender: str, reply: BotReply) -> None:
        """Deliver a reply nobody asked for (a human agent's); DeliveryError if it fails."""
        await self.deliver({"type": "reply", "in_reply_to": None,
                            **reply.to_dict(recipient_id=sender)})

    async def close(self) -> None:
        await self.outbox.close()
