"""Slack channel: Events API requests in, ``chat.postMessage`` out.

Point the app's Event Subscriptions *Request URL* at ``https://<bot>/webhooks/slack``
and subscribe to ``message.im`` (and ``message.channels`` if wanted). Every request is
verified: ``X-Slack-Signature`` must be ``v0=`` + HMAC-SHA256(signing secret,
``v0:{X-Slack-Request-Timestamp}:{body}``) with a timestamp within ``window_s``.
``url_verification`` is answered with its challenge; ``event_callback`` messages from
people (no ``subtype``, no ``bot_id``) are answered asynchronously with
``POST {api_base}/chat.postMessage`` (bearer ``bot_token``, scope ``chat:write``), in the
thread when the message was in one. Retries (``X-Slack-Retry-Num``) and events seen
before are acknowledged and ignored. Sessions are keyed ``slack:<user id>``.

Feedback: subscribe to ``reaction_added`` too (scope ``reactions:read``). A 👍 (``+1``,
``thumbsup``, ``heart``) or 👎 (``-1``, ``thumbsdown``) on one of the app's own messages
(``item_user`` is the app's bot user, from the event's ``authorizations``) is feedback on
that reply (:mod:`channels.reactions`); it is recorded and not answered. Other reactions
are ignored.

Retries: Slack resends an event (``X-Slack-Retry-Num``) when it got no 200 within 3 s.
A retry of an event this process has taken is acknowledged and ignored; a retry of one it
never saw (the first delivery never arrived) is answered, so no message is lost.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from channels.boundary import parse_json, same_secret
from channels.delivery import (
    Outbox,
    RecentIds,
    RetryPolicy,
    reply_text,
    split_text,
)
from channels.http import ignored, unauthorized
from channels.pacing import RateLimit
from channels.reactions import SentMessages
from channels.registry import OnMessage, OnStream
from channels.signing import ReplayCache, SignatureError, check_timestamp, hmac_hex
from foundation.checks import check, http_url, non_empty, positive
from foundation.feedback import DOWN, UP, reaction_message
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
MAX_TEXT = 3000  # chat.postMessage truncates past 40k; keep messages readable
KNOWN_CHANNELS = 10_000
# chat.postMessage: about one message a second per channel, short bursts allowed; Slack also
# keeps a workspace-wide limit it does not publish (its 429's Retry-After covers that).
# Lanes are channels (a DM is one too).
SLACK_RATE = RateLimit(rate_per_s=0, each_rate_per_s=1, each_burst=3)
RATINGS = {"+1": UP, "thumbsup": UP, "heart": UP, "-1": DOWN, "thumbsdown": DOWN}


@dataclass(frozen=True)
class SlackSettings:
    """The app's signing secret and bot token (``xoxb-...``), and the Web API base URL."""

    signing_secret: str = check(non_empty)
    bot_token: str = check(non_empty)
    api_base: str = check(http_url, default="https://slack.com/api")
    window_s: float = check(positive, default=300.0)
    show_citations: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # over SLACK_RATE


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack computes for ``body`` sent at ``timestamp``."""
    return "v0=" + hmac_hex(secret, b"v0:" + timestamp.encode("ascii") + b":" + body)


def escape(text: str) -> str:
    """Escape the three characters Slack's message formatting reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_ok(result: Any) -> str | None:
    """What is wrong with a Web API answer (None when it says ``ok``)."""
    if isinstance(result, dict) and result.get("ok"):
        return None
    return f"slack said {result.get('error') if isinstance(result, dict) else result}"


class SlackChannel:
    """Answers people who write to the Slack app."""

    name: ClassVar[str] = "slack"
    Settings: ClassVar[type[Any]] = SlackSettings

    def __init__(self, settings: SlackSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit.over(SLACK_RATE))
        self.replays = ReplayCache(settings.window_s)
        self.seen = RecentIds()
        self.conversations: OrderedDict[str, str] = OrderedDict()  # user -> last channel
        self.sent = SentMessages()  # "<channel>:<ts>" of each posted message -> its text

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    def verify(self, request: web.Request, body: bytes) -> str:
        """Raise 401 unless Slack signed ``body``; the signature."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        try:
            check_timestamp(timestamp, window=self.settings.window_s)
            if not signature:
                raise SignatureError("missing X-Slack-Signature header")
            if not same_secret(signature, slack_signature(self.settings.signing_secret, timestamp,
                                                    body)):
                raise SignatureError("X-Slack-Signature does not match")
        except SignatureError as exc:
            raise unauthorized(str(exc)) from exc
        return signature

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = self.verify(request, body)
        try:
            self.replays.check_and_add(signature)
        except SignatureError as exc:
            raise unauthorized(str(exc)) from exc
        data = parse_json(body)
        if data.get("type") == "url_verification":
            return web.json_response({"challenge": data.get("challenge")})
        event = data.get("event")
        if data.get("type") != "event_callback" or not isinstance(event, dict):
            return ignored(f"type {data.get('type')!r}")
        if event.get("type") == "reaction_added":
            return self.reaction(data, event)
        if event.get("type") != "message" or event.get("subtype") or event.get("bot_id") \
                or not isinstance(event.get("user"), str) \
                or not isinstance(event.get("channel"), str) \
                or not isinstance(event.get("text"), str):
            return ignored("not a message from a person")
        event_id = str(data.get("event_id") or f"{event['channel']}:{event.get('ts')}")
        if not self.seen.add(event_id):  # mostly a retry (X-Slack-Retry-Num) of one we took
            return ignored("duplicate event", {"X-Slack-No-Retry": "1"})
        thread = event.get("thread_ts")
        message = UserMessage(sender=event["user"], text=unescape(event["text"]),
                              channel=self.name, metadata={
                                  "slack_channel": event["channel"], "event_id": event_id,
                                  "team_id": data.get("team_id"), "thread_ts": thread})
        self._remember(event["user"], event["channel"])
        self.outbox.spawn(self._answer(message, event["channel"],
                                       thread if isinstance(thread, str) else None),
                          name=f"event {event_id}")
        return web.json_response({"ok": True})

    def reaction(self, data: dict[str, Any], event: dict[str, Any]) -> web.Response:
        """A rating reaction on one of the app's messages, recorded as feedback."""
        item = event.get("item")
        rating = RATINGS.get(str(event.get("reaction") or "").split("::")[0])
        bots = {found.get("user_id") for found in data.get("authorizations") or []
                if isinstance(found, dict) and found.get("is_bot")}
        if rating is None or not isinstance(item, dict) or item.get("type") != "message" \
                or not isinstance(item.get("channel"), str) \
                or not isinstance(event.get("user"), str) \
                or (bots and event.get("item_user") not in bots):
            return ignored("not a rating of the app's message")
        channel = item["channel"]
        event_id = str(data.get("event_id") or f"reaction:{channel}:{event.get('event_ts')}")
        if not self.seen.add(event_id):
            return ignored("duplicate event", {"X-Slack-No-Retry": "1"})
        message = reaction_message(event["user"], self.name, rating,
                                   rated_text=self.sent.text_of(f"{channel}:{item.get('ts')}"),
                                   metadata={"slack_channel": channel, "event_id": event_id})
        self.outbox.spawn(self._answer(message, channel, None), name=f"event {event_id}")
        return web.json_response({"ok": True})

    def _remember(self, user: str, channel: str) -> None:
        self.conversations.pop(user, None)
        self.conversations[user] = channel
        if len(self.conversations) > KNOWN_CHANNELS:
            self.conversations.popitem(last=False)

    async def _answer(self, message: UserMessage, channel: str, thread: str | None) -> None:
        async def send(text: str) -> None:
            await self.post(channel, text, thread=thread)

        await self.outbox.answer(message, on_message=self.on_message, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"event {message.metadata.get('event_id')}")

    async def post(self, channel: str, text: str, *, thread: str | None = None) -> None:
        """``chat.postMessage`` to ``channel`` (in ``thread``), escaped, split if long."""
        url = f"{self.settings.api_base.rstrip('/')}/chat.postMessage"
        auth = {"Authorization": f"Bearer {self.settings.bot_token}"}
        sent: list[str | None] = []
        for piece in split_text(text, MAX_TEXT):
            payload: dict[str, Any] = {"channel": channel, "text": escape(piece)}
            if thread:
                payload["thread_ts"] = thread
            answer = await self.outbox.post(url, payload, headers=auth, to=channel,
                                            what="slack chat.postMessage", accept=slack_ok)
            if isinstance(answer, dict) and answer.get("ts"):
                sent.append(f"{answer.get('channel') or channel}:{answer['ts']}")
        self.sent.remember(sent, text)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Post to the conversation ``sender`` last wrote in (else their DM with the app)."""
        channel = self.conversations.get(sender, sender)
        await self.post(channel, reply_text(reply, citations=self.settings.show_citations))

    async def close(self) -> None:
        await self.outbox.close()
