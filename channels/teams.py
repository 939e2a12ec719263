"""Microsoft Teams through the Bot Framework: activities in, Bot Connector replies out.

Register an Azure Bot with messaging endpoint ``https://<bot>/webhooks/teams``, add the
Microsoft Teams channel, and give the channel the app id and a client secret. The Bot
Connector posts each `activity
<https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object>`_
with a bearer token that :mod:`channels.botframework` checks (401 when it is missing, forged,
expired, for another app or for another ``serviceUrl``). ``message`` activities with text are
answered from a background task with
``POST {serviceUrl}/v3/conversations/{conversation.id}/activities/{activity.id}`` (an OAuth
token of the app), buttons as a hero card of ``imBack`` actions; messages with only
attachments (pictures, files) get ``attachment_reply``; a ``messageReaction`` adding
``like`` or ``heart`` (up) or ``angry`` (down) to one of the bot's messages (``replyToId``)
is feedback on that reply (:mod:`channels.reactions`), recorded and not answered; every
other activity type (``conversationUpdate``, ``typing``, other reactions, ...) is
acknowledged and ignored, and so is an activity id seen before. The bot's own @mention is
removed from the text in group chats and channels. Sessions are keyed ``teams:<from.id>``.

Replies and pushes go only to a ``serviceUrl`` whose host is in ``service_hosts``. For
``push`` (human agents) the channel keeps each sender's last conversation reference in
memory, per process: it can push to people who wrote to this process since it started.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from aiohttp import web

from channels.botframework import (
    OPENID_METADATA_URL,
    SERVICE_URL_CLAIM,
    TOKEN_URL,
    AppToken,
    AuthError,
    KeysUnavailable,
    SigningKeys,
    TokenValidator,
    allowed_service_url,
    host_patterns,
)
from channels.boundary import parse_json
from channels.delivery import DeliveryError, Outbox, RecentIds, RetryPolicy, reply_text, split_text
from channels.http import ignored, unauthorized
from channels.pacing import RateLimit
from channels.reactions import SentMessages
from channels.registry import OnMessage, OnStream
from foundation.checks import check, http_url, non_empty
from foundation.errors import BadRequest, ChannelError, Forbidden
from foundation.feedback import DOWN, UP, reaction_message
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
MAX_TEXT = 20_000  # Teams takes about 28 KB per message, markup included
KNOWN_SENDERS = 10_000
HERO_CARD = "application/vnd.microsoft.card.hero"
# Teams' bot limits: 50 requests a second per app and tenant; per bot and conversation 7 a
# second, 60 in 30 seconds (and 1,800 an hour). Lanes are conversations. The Bot Connector
# reads no idempotency key.
TEAMS_RATE = RateLimit(rate_per_s=50, burst=50, each_rate_per_s=2, each_burst=7)
RATINGS = {"like": UP, "heart": UP, "angry": DOWN}  # messageReaction types


@dataclass(frozen=True)
class TeamsSettings:
    """The Azure Bot's app id and client secret, and where the Bot Framework lives."""

    app_id: str = check(non_empty)
    app_password: str = check(non_empty)
    openid_metadata_url: str = check(http_url, default=OPENID_METADATA_URL)
    token_url: str = check(http_url, default=TOKEN_URL)
    service_hosts: tuple[str, ...] = check(
        host_patterns, default=("*.botframework.com", "smba.trafficmanager.net"))
    show_citations: bool = True
    attachment_reply: str = check(non_empty, default=(
        "Sorry, I can only read text. Please type your question."))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # over TEAMS_RATE


@dataclass(frozen=True)
class Reference:
    """Where a conversation lives: enough to post into it later."""

    service_url: str
    conversation: dict[str, Any]
    bot: dict[str, Any]
    user: dict[str, Any]


def _account(activity: dict[str, Any], name: str) -> dict[str, Any]:
    value = activity.get(name)
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise BadRequest(f"activity has no '{name}.id'")
    return value


def spoken_text(activity: dict[str, Any]) -> str:
    """The message's text without the bot's own @mention (``<at>Bot</at>``)."""
    text = activity.get("text")
    if not isinstance(text, str):
        return ""
    bot = activity.get("recipient")
    bot_id = bot.get("id") if isinstance(bot, dict) else None
    entities = activity.get("entities")
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, dict):
            continue  # not an entity (once an AttributeError: a 500)
        mentioned = entity.get("mentioned")
        mention = entity.get("text")
        if entity.get("type") == "mention" and isinstance(mentioned, dict) \
                and mentioned.get("id") == bot_id and isinstance(mention, str) and mention:
            text = text.replace(mention, " ")  # not "": that doubles the text each time
    return text.strip()


def has_attachments(activity: dict[str, Any]) -> bool:
    """Whether the message carries something besides text (Teams adds a ``text/html`` copy
    of the text itself to some messages)."""
    items = activity.get("attachments")
    return any(isinstance(a, dict) and a.get("contentType") != "text/html"
               for a in (items if isinstance(items, list) else []))


def hero_card(buttons: tuple[dict[str, str], ...]) -> dict[str, Any]:
    """The reply's buttons as a hero card; a click sends the button's payload as a message."""
    return {"contentType": HERO_CARD, "content": {"buttons": [
        {"type": "imBack", "title": b.get("title", ""), "value": b.get("payload")
         or b.get("title", "")} for b in buttons]}}


class TeamsChannel:
    """Answers people who write to the bot in Microsoft Teams."""

    name: ClassVar[str] = "teams"
    Settings: ClassVar[type[Any]] = TeamsSettings

    def __init__(self, settings: TeamsSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit.over(TEAMS_RATE))
        self.keys = SigningKeys(settings.openid_metadata_url, self.outbox)
        self.validator = TokenValidator(settings.app_id, self.keys)
        self.token = AppToken(settings.token_url, settings.app_id, settings.app_password,
                              self.outbox)
        self.seen = RecentIds()
        self.references: OrderedDict[str, Reference] = OrderedDict()
        self.sent = SentMessages()  # "<conversation>:<activity id>" we posted -> its text

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    async def authenticate(self, request: web.Request) -> dict[str, Any]:
        """The activity, once its token is checked: 401 when it is not valid, 503 while the
        signing keys cannot be fetched, 403 for a service URL that is not allowed."""
        try:
            claims, endorsements = await self.validator.verify(
                request.headers.get("Authorization"))
            activity = parse_json(await request.read())
            service_url = activity.get("serviceUrl")
            if not isinstance(service_url, str) or claims.get(SERVICE_URL_CLAIM) != service_url:
                raise AuthError("the token's serviceurl claim does not match the activity")
            if endorsements and activity.get("channelId") not in endorsements:
                raise AuthError("the token's key does not endorse this channel")
        except AuthError as exc:
            raise unauthorized(str(exc)) from exc
        except KeysUnavailable as exc:
            log.error("teams: cannot check tokens: %s", exc)
            raise web.HTTPServiceUnavailable(
                text='{"error": "the Bot Framework signing keys are unavailable"}',
                content_type="application/json") from exc
        if not allowed_service_url(service_url, self.settings.service_hosts):
            raise Forbidden("the activity's serviceUrl is not in teams.service_hosts")
        return activity

    async def receive(self, request: web.Request) -> web.Response:
        activity = await self.authenticate(request)
        kind = activity.get("type")
        if kind not in ("message", "messageReaction"):
            return ignored(f"activity type {kind!r}")
        activity_id = activity.get("id")
        if not isinstance(activity_id, str) or not activity_id:
            raise BadRequest("activity has no 'id'")
        user, conversation = _account(activity, "from"), _account(activity, "conversation")
        bot = _account(activity, "recipient")
        if not self.seen.add(f"{conversation['id']}:{activity_id}"):
            return ignored("duplicate activity")
        reference = Reference(activity["serviceUrl"], conversation, bot, user)
        self._remember(user["id"], reference)
        if kind == "messageReaction":
            return self.reaction(activity, reference)
        text = spoken_text(activity)
        if not text:
            if has_attachments(activity):
                self.outbox.spawn(self._tell(reference, activity_id),
                                  name=f"activity {activity_id}")
            return ignored("no text")
        tenant = conversation.get("tenantId")
        message = UserMessage(sender=user["id"], text=text, channel=self.name, metadata={
            "activity_id": activity_id, "conversation_id": conversation["id"],
            "conversation_type": conversation.get("conversationType"),
            "tenant_id": tenant if isinstance(tenant, str) else None,
            "aad_object_id": user.get("aadObjectId")})
        self.outbox.spawn(self._answer(message, reference), name=f"activity {activity_id}")
        return web.json_response({"ok": True})

    def reaction(self, activity: dict[str, Any], reference: Reference) -> web.Response:
        """Reactions added to one of the bot's messages: the first rating is feedback."""
        added = activity.get("reactionsAdded") or []
        kinds = [given.get("type") for given in added if isinstance(given, dict)]
        rating = next((RATINGS[k] for k in kinds if isinstance(k, str) and k in RATINGS), None)
        if rating is None:
            return ignored("not a rating")
        conversation = reference.conversation["id"]
        rated = self.sent.text_of(f"{conversation}:{activity.get('replyToId')}")
        message = reaction_message(reference.user["id"], self.name, rating, rated_text=rated,
                                   metadata={"activity_id": activity["id"],
                                             "conversation_id": conversation})
        self.outbox.spawn(self._answer(message, reference), name=f"activity {activity['id']}")
        return web.json_response({"ok": True})

    def _remember(self, sender: str, reference: Reference) -> None:
        self.references.pop(sender, None)
        self.references[sender] = reference
        if len(self.references) > KNOWN_SENDERS:
            self.references.popitem(last=False)

    async def _answer(self, message: UserMessage, reference: Reference) -> None:
        buttons: list[dict[str, str]] = []

        async def turn(incoming: UserMessage) -> BotReply:
            reply = await self.on_message(incoming)
            buttons.extend(reply.buttons)
            return reply

        async def send(text: str) -> None:
            await self.send(reference, text, reply_to=message.metadata["activity_id"],
                            buttons=tuple(buttons))

        await self.outbox.answer(message, on_message=turn, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"activity {message.metadata['activity_id']}")

    async def _tell(self, reference: Reference, activity_id: str) -> None:
        await self.outbox.attempt(
            self.send(reference, self.settings.attachment_reply, reply_to=activity_id),
            about=f"activity {activity_id}")

    async def send(self, reference: Reference, text: str, *, reply_to: str | None = None,
                   buttons: tuple[dict[str, str], ...] = ()) -> None:
        """Post ``text`` into the conversation (as a reply to activity ``reply_to``), split
        if long, the buttons on the last piece."""
        if not allowed_service_url(reference.service_url, self.settings.service_hosts):
            raise DeliveryError(f"refusing to send to {reference.service_url!r}: its host is "
                                "not in teams.service_hosts")
        url = (f"{reference.service_url.rstrip('/')}/v3/conversations/"
               f"{quote(reference.conversation['id'], safe='')}/activities")
        if reply_to:
            url += f"/{quote(reply_to, safe='')}"
        pieces, sent = split_text(text, MAX_TEXT), list[str | None]()
        for number, piece in enumerate(pieces, start=1):
            activity: dict[str, Any] = {
                "type": "message", "from": reference.bot, "recipient": reference.user,
                "conversation": reference.conversation, "text": piece, "textFormat": "plain"}
            if reply_to:
                activity["replyToId"] = reply_to
            if buttons and number == len(pieces):
                activity["attachments"] = [hero_card(buttons)]
            auth = {"Authorization": f"Bearer {await self.token.get()}"}
            answer = await self.outbox.post(url, activity, headers=auth, what="teams reply",
                                            to=reference.user.get("id"),
                                            lane=reference.conversation["id"])
            if isinstance(answer, dict) and isinstance(answer.get("id"), str):
                sent.append(f"{reference.conversation['id']}:{answer['id']}")
        self.sent.remember(sent, text)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Post into the conversation ``sender`` last wrote in (known in this process)."""
        reference = self.references.get(sender)
        if reference is None:
            raise ChannelError(f"no Teams conversation with {sender!r} is known to this "
                               "process: they must write to the bot first")
        await self.send(reference, reply_text(reply, citations=self.settings.show_citations),
                        buttons=reply.buttons)

    async def close(self) -> None:
        await self.outbox.close()
