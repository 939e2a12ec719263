"""Chatwoot channel: the bot is a Chatwoot *Agent Bot* for teams that already run Chatwoot.

Chatwoot POSTs an inbox's events to the agent bot's webhook URL
(``https://<bot>/webhooks/chatwoot``). Answered: ``message_created`` events of an
``incoming`` message (``message_type`` ``"incoming"`` or ``0``) from a contact, not private,
with text, in a conversation whose ``status`` is ``pending`` (conversations an agent bot is
connected to start ``pending``; once ``open``, people own them and the bot stays silent).
Everything else (outgoing and private messages, the bot's own, activity, other events) is
acknowledged with 200 and ignored; a message delivered twice (the same account and message
id) is answered once. Sessions are keyed ``chatwoot:<account id>:<conversation id>``.

Verification: Chatwoot 4.13 and later sign an agent bot's deliveries with the bot's secret
(``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Chatwoot-Timestamp>." + body)>``),
checked when ``secret`` is set, with a timestamp within ``window_s``. Older versions sign
nothing: set ``url_token`` and put it in the webhook URL (``?token=...``); it is compared in
constant time. At least one of the two is required.

Replies: ``POST {base_url}/api/v1/accounts/{account}/conversations/{conversation}/messages``
(header ``api_access_token``: the agent bot's access token) with ``content``,
``message_type: outgoing``, ``private: false``; a reply's buttons become an ``input_select``
message (Chatwoot's options; ``options: false`` lists them as text). An option chosen in the
web widget comes back as ``message_updated`` of that message with
``content_attributes.submitted_values``, answered like a message. When a reply hands the
conversation over (``handoff``), the reply is posted and then
``POST .../conversations/{conversation}/toggle_status`` ``{"status": "open"}`` gives it to
Chatwoot's agents. API errors are retried (429/5xx) and logged; the turn never crashes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from channels.boundary import parse_json, same_secret
from channels.delivery import Outbox, RecentIds, RetryPolicy, reply_text
from channels.http import ignored, unauthorized
from channels.meta_graph import Buttons, choices
from channels.pacing import RateLimit
from channels.registry import OnMessage, OnStream
from channels.signing import SignatureError, verify
from foundation.checks import check, http_url, non_empty, positive
from foundation.errors import BadRequest, ChannelError, Forbidden
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
TOKEN_QUERY = "token"
INCOMING = ("incoming", 0)  # webhook_data writes the name, push_event_data the number
BOT_STATUS = "pending"  # the agent bot's conversations; "open" ones belong to people
MAX_ID_DIGITS = 20


def url_token(value: Any) -> str | None:
    """Config check: 16-256 characters that need no escaping in a URL."""
    return None if re.fullmatch(r"[A-Za-z0-9_~.-]{16,256}", value) else \
        "must be 16-256 characters of A-Z, a-z, 0-9, '_', '-', '.' or '~'"


@dataclass(frozen=True)
class ChatwootSettings:
    """Where Chatwoot is, the agent bot's access token and how its webhooks are verified."""

    base_url: str = check(http_url)  # e.g. https://app.chatwoot.com
    api_access_token: str = check(non_empty)  # the agent bot's access token
    secret: str | None = check(non_empty, default=None)  # the bot's webhook secret (>= 4.13)
    url_token: str | None = check(url_token, default=None)  # ?token= in the webhook URL
    window_s: float = check(positive, default=300.0)  # signature timestamps
    account_id: int | None = None  # set: events of other accounts are refused (403)
    options: bool = True  # buttons as an input_select message, else as text lines
    show_citations: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)

    def __post_init__(self) -> None:
        if not self.secret and not self.url_token:
            raise ValueError("set 'secret' (the agent bot's webhook secret, Chatwoot 4.13+) "
                             "or 'url_token' (sent as ?token= in the webhook URL), or both")


@dataclass(frozen=True)
class Conversation:
    """One Chatwoot conversation: its account and (display) id, as the API names them."""

    account: str
    conversation: str

    @property
    def sender(self) -> str:
        return f"{self.account}:{self.conversation}"

    @classmethod
    def of(cls, sender: str) -> Conversation:
        account, _, conversation = sender.partition(":")
        if not (account.isdecimal() and conversation.isdecimal()):
            raise ChannelError(f"chatwoot: {sender!r} is not '<account id>:<conversation id>'")
        return cls(account, conversation)


def _member(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _id(data: Any, *path: str) -> str:
    """The id at ``path`` (an integer, or digits as Chatwoot's samples sometimes write it)."""
    value = data
    for key in path:
        value = _member(value, key)
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isdecimal() or len(text) > MAX_ID_DIGITS:
        raise BadRequest(f"event has no id '{'.'.join(path)}'")
    return str(int(text))


def _optional_id(event: dict[str, Any], key: str) -> int | None:
    value = _member(_member(event, key), "id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _status(event: dict[str, Any]) -> str:
    status = _member(_member(event, "conversation"), "status")
    if not isinstance(status, str):
        raise BadRequest("event has no 'conversation.status'")
    return status


def incoming_text(event: dict[str, Any]) -> str | None:
    """The text of a ``message_created`` event a contact wrote, or None (not one to answer)."""
    sender_type = _member(_member(event, "sender"), "type")
    if event.get("message_type") not in INCOMING or event.get("private") is True \
            or sender_type not in (None, "contact"):
        return None
    content = event.get("content")
    return content if isinstance(content, str) and content.strip() else None


def chosen_option(event: dict[str, Any]) -> str | None:
    """The option a contact chose in one of the bot's ``input_select`` messages (a
    ``message_updated`` event with ``submitted_values``), or None."""
    attributes = _member(event, "content_attributes")
    submitted = _member(attributes, "submitted_values")
    if event.get("content_type") != "input_select" or not isinstance(submitted, list) \
            or not submitted:
        return None
    first = submitted[0]
    for key in ("value", "title"):
        value = _member(first, key)
        if isinstance(value, str) and value.strip():
            return value
    return None


class ChatwootChannel:
    """Answers Chatwoot conversations as the inbox's agent bot; hands them to people."""

    name: ClassVar[str] = "chatwoot"
    Settings: ClassVar[type[Any]] = ChatwootSettings

    def __init__(self, settings: ChatwootSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit)
        self.seen = RecentIds()

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    def verify(self, request: web.Request, body: bytes) -> None:
        """Raise 401 unless the request carries the URL token and the signature configured."""
        settings = self.settings
        if settings.url_token is not None and \
                not same_secret(request.query.get(TOKEN_QUERY), settings.url_token):
            raise unauthorized(f"missing or wrong ?{TOKEN_QUERY}= in the webhook URL")
        if settings.secret is not None:
            try:
                verify(settings.secret, body, signature=request.headers.get(SIGNATURE_HEADER),
                       timestamp=request.headers.get(TIMESTAMP_HEADER), window=settings.window_s)
            except SignatureError as exc:
                raise unauthorized(f"{SIGNATURE_HEADER}: {exc}") from exc

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.verify(request, body)
        event = parse_json(body)
        kind = event.get("event")
        if kind not in ("message_created", "message_updated"):
            return ignored(f"event {str(kind)[:40]!r}")
        account, message_id = _id(event, "account", "id"), _id(event, "id")
        where = Conversation(account, _id(event, "conversation", "id"))
        if self.settings.account_id is not None and account != str(self.settings.account_id):
            raise Forbidden(f"events of account {account} are not for this bot")
        status = _status(event)
        if kind == "message_created":
            text, key = incoming_text(event), f"{account}:{message_id}"
        else:
            text, key = chosen_option(event), f"{account}:{message_id}:chosen"
        if text is None:
            return ignored("not a contact's message" if kind == "message_created"
                            else "not a chosen option")
        if status != BOT_STATUS:
            return ignored(f"conversation is {status[:20]!r}: people answer it")
        if not self.seen.add(key):
            log.info("chatwoot: dropped a redelivered message %s", key)
            return ignored("duplicate message")
        metadata = {"account_id": int(account), "conversation_id": int(where.conversation),
                    "message_id": int(message_id), "inbox_id": _optional_id(event, "inbox"),
                    "contact_id": _optional_id(event, "sender")
                    if kind == "message_created" else None}  # an option: the bot's message
        message = UserMessage(sender=where.sender, text=text, channel=self.name,
                              metadata=metadata)
        self.outbox.spawn(self._answer(message, where), name=f"message {key}")
        return web.json_response({"ok": True})

    async def _answer(self, message: UserMessage, where: Conversation) -> None:
        replies: list[BotReply] = []  # the reply, for its buttons and handoff flag

        async def turn(incoming: UserMessage) -> BotReply:
            reply = await self.on_message(incoming)
            replies.append(reply)
            return reply

        async def send(text: str) -> None:
            await self.post_message(where, text, replies[0].buttons if replies else ())

        about = f"message {message.metadata.get('message_id')}"
        await self.outbox.answer(message, on_message=turn, send=send,
                                 citations=self.settings.show_citations, about=about)
        if replies and replies[0].handoff:
            await self.outbox.attempt(self.hand_over(where), about=about)

    def _api(self, where: Conversation, action: str) -> str:
        return (f"{self.settings.base_url.rstrip('/')}/api/v1/accounts/{where.account}"
                f"/conversations/{where.conversation}/{action}")

    async def _post(self, where: Conversation, action: str, payload: dict[str, Any],
                    what: str) -> Any:
        return await self.outbox.post(
            self._api(where, action), payload, what=what, to=where.sender,
            headers={"api_access_token": self.settings.api_access_token})

    async def post_message(self, where: Conversation, text: str, buttons: Buttons = ()) -> None:
        """Create an outgoing message in the conversation (``input_select`` with buttons)."""
        options = choices(buttons)
        payload: dict[str, Any] = {"content": text, "message_type": "outgoing",
                                   "private": False}
        if options and self.settings.options:
            payload.update(content_type="input_select", content_attributes={
                "items": [{"title": title, "value": value} for title, value in options]})
        elif options:
            payload["content"] = "\n".join([text, *(f"- {title}" for title, _ in options)])
        await self._post(where, "messages", payload, "chatwoot create message")

    async def hand_over(self, where: Conversation) -> None:
        """Set the conversation ``open``: Chatwoot's agents take it, the bot stops answering."""
        await self._post(where, "toggle_status", {"status": "open"}, "chatwoot toggle_status")
        log.info("chatwoot: handed conversation %s over to people", where.sender)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Post a message (an agent's, from the bot's own desk) to conversation ``sender``
        (``<account id>:<conversation id>``); ChannelError if it fails."""
        await self.post_message(Conversation.of(sender),
                                reply_text(reply, citations=self.settings.show_citations),
                                reply.buttons)

    async def close(self) -> None:
        await self.outbox.close()
