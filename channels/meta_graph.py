"""What the Meta Graph connectors share: WhatsApp Cloud API, Messenger and Instagram.

Meta calls one webhook URL per connector (``/webhooks/<name>``):

- ``GET`` when the webhook is set up in the App Dashboard, with ``hub.mode=subscribe``,
  ``hub.verify_token`` (compared with the ``verify_token`` setting in constant time) and
  ``hub.challenge``, which is echoed back as ``text/plain``. A wrong token gets 403.
- ``POST`` for every event, signed: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app
  secret, raw body)>``. The signature is checked over the raw bytes with
  :func:`hmac.compare_digest` before the body is read (401 when missing or wrong). The
  channel answers 200 at once (Meta resends what it did not see acknowledged, and disables
  a webhook that keeps failing), drops events it has seen before, and answers from a
  background task: ``POST {graph_base}/...`` with the access token as a bearer header,
  retried on 429 and 5xx (:meth:`channels.delivery.Outbox.post`), paced by the connector's
  ``rate_defaults`` under the ``rate_limit`` settings (lanes are recipients). The Graph send
  APIs read no idempotency key: a retry after a lost answer may deliver twice.

The customer-service window: a business may message a person freely for 24 hours after
that person's last message. The channel remembers when each sender last wrote **in memory,
per process** (:class:`ServiceWindow`): after a restart, or in another ``bot serve`` worker,
a sender counts as outside the window until they write again. What a connector does
outside the window differs (a template on WhatsApp, the human-agent tag on Messenger), so
each one's ``push`` decides; the time comes from the channel's ``clock`` (``time.time``,
replaced in tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from channels.boundary import parse_json, query_value, same_secret, text_value
from channels.delivery import Outbox, RecentIds, RetryPolicy
from channels.http import MAX_SENDER_CHARS, ignored, unauthorized
from channels.pacing import RateLimit
from channels.reactions import SentMessages
from channels.registry import OnMessage, OnStream
from channels.service_window import ServiceWindow
from channels.signing import hmac_hex
from foundation.checks import check, http_url, non_empty
from foundation.errors import BadRequest, Forbidden
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
GRAPH_BASE = "https://graph.facebook.com/v21.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
CANNOT_READ = "Sorry, I can only read text messages. Please type your question."
Buttons = tuple[dict[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class GraphSettings:
    """What every Meta connector needs: the app secret (request signatures), the verify
    token (webhook set-up), the access token (sending) and where the Graph API lives."""

    app_secret: str = check(non_empty)
    verify_token: str = check(non_empty)
    access_token: str = check(non_empty)
    graph_base: str = check(http_url, default=GRAPH_BASE)
    unsupported_text: str = check(non_empty, default=CANNOT_READ)
    show_citations: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # over the connector's defaults


def graph_signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` Meta sends with ``body``."""
    return "sha256=" + hmac_hex(app_secret, body)


def objects(container: dict[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    """``container[key]`` as a list of JSON objects (``[]`` when absent); 400 otherwise."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"'{what}' must be a list of objects")
    return value


def member(container: dict[str, Any], key: str) -> dict[str, Any]:
    """``container[key]`` when it is a JSON object, else an empty one."""
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def string(container: dict[str, Any], key: str) -> str | None:
    """``container[key]`` when it is a string."""
    value = container.get(key)
    return value if isinstance(value, str) else None


def id_field(container: dict[str, Any], key: str, what: str) -> str:
    """A required id (a sender, a message): text without control characters, not too long."""
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise BadRequest(f"{what} is missing")
    text = text_value(str(value), what)
    if len(text) > MAX_SENDER_CHARS:
        raise BadRequest(f"{what} is too long (limit {MAX_SENDER_CHARS} characters)")
    return text


def choices(buttons: Buttons) -> list[tuple[str, str]]:
    """``(title, payload)`` of each button, without empty or repeated titles (platforms
    refuse both). A button's payload is what the bot reads when it is tapped."""
    found: dict[str, str] = {}
    for button in buttons:
        title = (button.get("title") or "").strip()
        payload = (button.get("payload") or "").strip() or title
        if title and title not in found:
            found[title] = payload
    return list(found.items())


def choice_id(title: str, payload: str, limit: int) -> str:
    """The payload as a platform id of at most ``limit`` characters (else the title)."""
    return payload if len(payload) <= limit else title[:limit]


@dataclass(frozen=True)
class Inbound:
    """One thing a person sent: ``text`` to answer, or None for what the bot cannot read
    (a picture, a sticker, a reaction); ``key`` is the platform's id of it."""

    sender: str
    key: str
    text: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


class GraphChannel:
    """The common half of a Meta connector. A subclass names its webhook ``object``, reads
    one ``entry`` of an event into :class:`Inbound` items (:meth:`read`), sends a reply
    inside the window (:meth:`reply`) and decides what ``push`` does outside it."""

    name: ClassVar[str]
    Settings: ClassVar[type[Any]]
    webhook_object: ClassVar[str]  # the event's "object": whatsapp_business_account, page, ...
    rate_defaults: ClassVar[RateLimit]  # the provider's documented send limits

    def __init__(self, settings: GraphSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry,
                             settings.rate_limit.over(self.rate_defaults))
        self.seen = RecentIds()
        self.window = ServiceWindow()
        self.sent = SentMessages()  # what each sent message id carried, for reactions to rate
        self.clock: Callable[[], float] = time.time

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.get(prefix, self.verify_subscription), web.post(prefix, self.receive)]

    async def verify_subscription(self, request: web.Request) -> web.Response:
        """Meta's webhook verification: echo ``hub.challenge`` for the right verify token."""
        if not same_secret(request.query.get("hub.verify_token"), self.settings.verify_token):
            raise Forbidden("hub.verify_token does not match the channel's verify_token")
        challenge = query_value(request, "hub.challenge")
        if query_value(request, "hub.mode") != "subscribe" or not challenge:
            raise BadRequest("expected hub.mode=subscribe and a hub.challenge")
        return web.Response(text=challenge, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise unauthorized(f"missing {SIGNATURE_HEADER} header")
        if not same_secret(signature, graph_signature(self.settings.app_secret, body)):
            raise unauthorized(f"{SIGNATURE_HEADER} does not match the body")
        data = parse_json(body)
        if data.get("object") != self.webhook_object:
            return ignored(f"not a {self.webhook_object!r} event")
        found = [item for entry in objects(data, "entry", "entry") for item in self.read(entry)]
        for item in found:  # all read and checked before any is answered
            self.take(item)
        return web.json_response({"ok": True})

    def read(self, entry: dict[str, Any]) -> list[Inbound]:
        raise NotImplementedError

    async def reply(self, sender: str, text: str, buttons: Buttons) -> None:
        """Send ``text`` (with ``buttons``) to ``sender`` inside the window."""
        raise NotImplementedError

    def take(self, item: Inbound) -> None:
        """Answer ``item`` in the background, unless it was seen before."""
        if not self.seen.add(item.key):
            log.info("%s: dropped a redelivered event %s", self.name, item.key)
            return
        self.window.opened(item.sender, self.clock())
        if item.text is None:
            self.outbox.spawn(self._tell(item.sender, self.settings.unsupported_text, item.key),
                              name=f"unsupported message {item.key}")
            return
        message = UserMessage(sender=item.sender, text=item.text, channel=self.name,
                              metadata={"message_id": item.key, **item.metadata})
        self.outbox.spawn(self._answer(message), name=f"message {item.key}")

    async def _answer(self, message: UserMessage) -> None:
        shown: list[Buttons] = []  # the reply's buttons, which Outbox.answer does not pass on

        async def turn(incoming: UserMessage) -> BotReply:
            reply = await self.on_message(incoming)
            shown.append(reply.buttons)
            return reply

        async def send(text: str) -> None:
            await self.reply(message.sender, text, shown[0] if shown else ())

        await self.outbox.answer(message, on_message=turn, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"message {message.metadata.get('message_id')}")

    async def _tell(self, sender: str, text: str, about: str) -> None:
        await self.outbox.attempt(self.reply(sender, text, ()), about=f"message {about}")

    async def graph_post(self, path: str, payload: dict[str, Any], *, what: str,
                         to: str) -> Any:
        """POST ``payload`` for recipient ``to`` to ``{graph_base}/{path}`` with the access
        token; paced and retried."""
        url = f"{self.settings.graph_base.rstrip('/')}/{path}"
        return await self.outbox.post(
            url, payload, what=what, to=to,
            headers={"Authorization": f"Bearer {self.settings.access_token}"})

    async def close(self) -> None:
        await self.outbox.close()
