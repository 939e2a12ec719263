"""SMS (and WhatsApp) through Twilio: the incoming-message webhook in, the Messages API out.

Set the phone number's (or WhatsApp sender's) *A message comes in* webhook to
``POST https://<bot>/webhooks/twilio`` and ``public_url`` to exactly that URL. Twilio posts
each message form-encoded (``MessageSid``, ``AccountSid``, ``From``, ``To``, ``Body``,
``NumMedia``, ``MediaUrl0``, ...) and signs it: ``X-Twilio-Signature`` is the base64
HMAC-SHA1, keyed with the auth token, of the URL Twilio called followed by every POST
parameter sorted by name, each written as name then value
(https://www.twilio.com/docs/usage/security#validating-requests). Behind a proxy the URL the
bot sees differs from the one Twilio called, hence ``public_url``.

The channel answers at once with empty TwiML (``<Response/>``) and sends the reply with
``POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`` (basic auth: account SID
and auth token; ``To``, ``From``, ``Body``), retried on 429/5xx, split at sentence or word
ends into messages of at most ``max_message_chars``. Sessions are keyed ``twilio:<From>``:
``twilio:+14155550100`` for SMS, ``twilio:whatsapp:+14155550100`` for Twilio's WhatsApp,
whose replies go out from the same ``whatsapp:`` sender. A message redelivered with a
``MessageSid`` seen before is acknowledged and ignored; pictures, voice notes and locations
without text get ``media_reply``.

WhatsApp's 24-hour customer-service window holds through Twilio too: ``push`` (a human
agent's message) to a ``whatsapp:`` sender sends free text inside the window and, outside it
or to a sender this process has not heard from (:mod:`channels.service_window`: in memory,
per process), the approved Content template ``whatsapp_template`` (``ContentSid``, with the
message as variable ``1`` when ``text_variable``); without one it raises ChannelError, as
Twilio would refuse the free text (error 63016). SMS has no window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from channels.boundary import MAX_INT_DIGITS, is_text, same_secret
from channels.delivery import Outbox, RecentIds, RetryPolicy, reply_text, split_text
from channels.http import unauthorized
from channels.pacing import RateLimit
from channels.registry import OnMessage, OnStream
from channels.service_window import WINDOW_S, ServiceWindow
from foundation.checks import between, check, http_url, non_empty
from foundation.errors import BadRequest, ChannelError, Forbidden
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_BODY = 1600  # the Messages API's limit for one Body
MAX_VARIABLE = 1024  # a WhatsApp template variable
KNOWN_SENDERS = 10_000
_SENTENCE_END = re.compile(r"[.!?…]\s|\n")
# Twilio sends one message segment a second from a US long code (toll-free numbers and short
# codes more) and queues the rest itself; lanes are our sending numbers. Its Messages API
# reads no idempotency key (I-Twilio-Idempotency-Token is what Twilio sends on its own
# webhooks), so a retry after a lost answer may deliver twice.
TWILIO_RATE = RateLimit(rate_per_s=0, each_rate_per_s=1, each_burst=5)


def account_sid(value: Any) -> str | None:
    """Config check: an account SID as the Twilio Console shows it (``AC`` + 32 hex)."""
    return None if re.fullmatch(r"AC[0-9a-fA-F]{32}", value) else \
        "must be a Twilio account SID like 'AC' followed by 32 hex digits"


def content_sid(value: Any) -> str | None:
    """Config check: a Content template SID as the Twilio Console shows it (``HX`` + 32 hex)."""
    return None if re.fullmatch(r"HX[0-9a-fA-F]{32}", value) else \
        "must be a Twilio Content SID like 'HX' followed by 32 hex digits"


@dataclass(frozen=True)
class TwilioTemplate:
    """An approved WhatsApp Content template, sent outside the 24-hour window;
    ``text_variable``: its variable ``{{1}}`` receives the message (folded, cut to 1024)."""

    content_sid: str = check(content_sid)
    text_variable: bool = False


@dataclass(frozen=True)
class TwilioSettings:
    """The account, the URL Twilio calls, and how replies are sent."""

    account_sid: str = check(account_sid)
    auth_token: str = check(non_empty)
    public_url: str = check(http_url)  # exactly the webhook URL set in the Twilio Console
    api_base: str = check(http_url, default="https://api.twilio.com")
    from_number: str = ""  # the sender for pushes to someone who has not written yet
    whatsapp_template: TwilioTemplate | None = None
    max_message_chars: int = check(between(160, MAX_BODY), default=MAX_BODY)
    show_citations: bool = True
    media_reply: str = check(non_empty, default=(
        "Sorry, I can only read text messages. Please type your question."))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # over TWILIO_RATE


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a POST of ``params`` to ``url``."""
    signed = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as configured, and with its default port written out or left off: Twilio may
    sign either form (its SDKs try both)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    if parts.port is None:
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    elif parts.port == default:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        return [url]
    return [url, urlunsplit(other)]


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body as (name, value) pairs, in order;
    :class:`BadRequest` when it is not UTF-8 text."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("request body is not a UTF-8 form") from exc
    for name, value in pairs:
        if not (is_text(name) and is_text(value)):
            raise BadRequest(f"form field {name[:40]!r} contains binary data")
    return pairs


def media_count(value: str) -> int:
    """``NumMedia`` as a number (0 when it is not one); :class:`BadRequest` when it has more
    digits than a number may have (``int()`` of thousands of digits raises ValueError)."""
    if not value.isdecimal():
        return 0
    if len(value) > MAX_INT_DIGITS:
        raise BadRequest(f"form field 'NumMedia' has {len(value)} digits "
                         f"(limit {MAX_INT_DIGITS})")
    return int(value)


def split_sentences(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a sentence or line
    where one ends in the second half of the piece, else at a word (:func:`split_text`)."""
    pieces: list[str] = []
    text = text.strip()
    while len(text) > limit:
        ends = [m.start() + 1 for m in _SENTENCE_END.finditer(text, 0, limit + 1)]
        cut = ends[-1] if ends and ends[-1] > limit // 2 else len(split_text(text, limit)[0])
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text or not pieces else pieces


def twilio_accepted(result: Any) -> str | None:
    """What is wrong with a Messages API answer (None when it names the message's sid)."""
    if isinstance(result, dict) and result.get("sid"):
        return None
    return f"twilio answered {str(result)[:200]}"


class TwilioSmsChannel:
    """Answers text messages sent to a Twilio number (SMS) or WhatsApp sender."""

    name: ClassVar[str] = "twilio"
    Settings: ClassVar[type[Any]] = TwilioSettings

    def __init__(self, settings: TwilioSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit.over(TWILIO_RATE))
        self.seen = RecentIds()
        self.numbers: OrderedDict[str, str] = OrderedDict()  # sender -> our number they wrote to
        self.urls = url_variants(settings.public_url)
        self.window = ServiceWindow()  # WhatsApp senders only
        self.clock: Callable[[], float] = time.time
        self.messages_url = (f"{settings.api_base.rstrip('/')}/2010-04-01/Accounts/"
                             f"{settings.account_sid}/Messages.json")
        self.auth = {"Authorization": aiohttp.BasicAuth(settings.account_sid,
                                                        settings.auth_token).encode()}

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    def verify(self, given: str, params: list[tuple[str, str]]) -> None:
        """Raise 401 unless ``given`` is Twilio's signature of ``params`` for the public URL."""
        if not any(same_secret(given, twilio_signature(self.settings.auth_token, url, params))
                   for url in self.urls):
            raise unauthorized(f"{SIGNATURE_HEADER} does not match")

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise unauthorized(f"missing {SIGNATURE_HEADER} header")
        params = parse_form(await request.read())
        self.verify(given, params)
        fields: dict[str, str] = {}
        for name, value in params:
            if fields.setdefault(name, value) != value:
                raise BadRequest(f"form field {name!r} is given twice")
        if fields.get("AccountSid") != self.settings.account_sid:
            raise Forbidden("the message is for another Twilio account")
        status = fields.get("SmsStatus", "received")
        message_sid = fields.get("MessageSid") or fields.get("SmsMessageSid", "")
        sender, ours = fields.get("From", ""), fields.get("To", "")
        if status != "received" or not (message_sid and sender and ours):
            return self.twiml()  # a status callback or not a message: nothing to answer
        media = media_count(fields.get("NumMedia", "0"))
        if not self.seen.add(message_sid):
            return self.twiml()
        self._remember(sender, ours)
        if sender.startswith("whatsapp:"):
            self.window.opened(sender, self.clock())
        text = fields.get("Body", "").strip()
        has_media = media > 0 or "Latitude" in fields
        if not text:
            if has_media:  # a picture, a voice note, a location: say what we can read
                self.outbox.spawn(self._send(sender, ours, self.settings.media_reply,
                                             f"message {message_sid}"),
                                  name=f"message {message_sid}")
            return self.twiml()
        message = UserMessage(sender=sender, text=text, channel=self.name, metadata={
            "message_sid": message_sid, "to": ours, "num_media": media,
            "whatsapp": sender.startswith("whatsapp:")})
        self.outbox.spawn(self._answer(message, ours), name=f"message {message_sid}")
        return self.twiml()

    @staticmethod
    def twiml() -> web.Response:
        """The empty TwiML answer: the reply follows through the REST API."""
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    def _remember(self, sender: str, ours: str) -> None:
        self.numbers.pop(sender, None)
        self.numbers[sender] = ours
        if len(self.numbers) > KNOWN_SENDERS:
            self.numbers.popitem(last=False)

    async def _answer(self, message: UserMessage, ours: str) -> None:
        async def send(text: str) -> None:
            await self.send(message.sender, ours, text)

        await self.outbox.answer(message, on_message=self.on_message, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"message {message.metadata.get('message_sid')}")

    async def _send(self, to: str, sender: str, text: str, about: str) -> None:
        await self.outbox.attempt(self.send(to, sender, text), about=about)

    async def send(self, to: str, sender: str, text: str) -> None:
        """Send ``text`` from our number ``sender`` to ``to``, one message per piece."""
        for piece in split_sentences(text, self.settings.max_message_chars):
            await self.outbox.post(self.messages_url, {"To": to, "From": sender, "Body": piece},
                                   headers=self.auth, form=True, what="twilio Messages", to=to,
                                   lane=sender, accept=twilio_accepted)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Text ``sender`` from the number they last wrote to (else ``from_number``)."""
        ours = self.numbers.get(sender) or self.settings.from_number
        if not ours:
            raise ChannelError(f"no Twilio number known for {sender!r}: they have not written "
                               "to this process and twilio.from_number is not set")
        text = reply_text(reply, citations=self.settings.show_citations)
        if not sender.startswith("whatsapp:"):
            await self.send(sender, ours, text)
            return
        ours = ours if ours.startswith("whatsapp:") else f"whatsapp:{ours}"
        age = self.window.age(sender, self.clock())
        if age is not None and age < WINDOW_S:
            await self.send(sender, ours, text)
            return
        template = self.settings.whatsapp_template
        if template is None:
            raise ChannelError("twilio: the WhatsApp customer has not written in the last 24 "
                               "hours (the customer-service window) and no whatsapp_template "
                               "is configured")
        await self.send_template(sender, ours, template, text)

    async def send_template(self, to: str, sender: str, template: TwilioTemplate,
                            text: str) -> None:
        """Send the Content template (``text`` as its variable ``1`` when it takes it)."""
        form = {"To": to, "From": sender, "ContentSid": template.content_sid}
        if template.text_variable:
            form["ContentVariables"] = json.dumps({"1": " ".join(text.split())[:MAX_VARIABLE]},
                                                  ensure_ascii=False)
        await self.outbox.post(self.messages_url, form, headers=self.auth, form=True,
                               what="twilio Messages (template)", to=to, lane=sender,
                               accept=twilio_accepted)

    async def close(self) -> None:
        await self.outbox.close()
