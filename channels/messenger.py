"""Messenger and Instagram channels: the Graph ``messaging`` webhooks in, the Send API out.

Both are the same webhook family (:mod:`channels.meta_graph` for verification and
signatures): Messenger's events come as ``object: page``, Instagram's as
``object: instagram``, each with ``entry[].messaging[]`` events. Subscribe the Page (or the
Instagram professional account) to ``messages`` and ``messaging_postbacks`` (and
``message_reactions`` to have reactions answered). Sessions are keyed
``messenger:<sender.id>`` / ``instagram:<sender.id>`` (the page- or Instagram-scoped id).

What the bot does with each event:

- ``message.text`` is read as text; a tapped quick reply is read as its
  ``message.quick_reply.payload`` (the bot's button payload), a ``postback`` (a button, Get
  Started, a menu item) as its ``payload`` (else its ``title``).
- A reaction that rates (👍 ``like``, ❤️ ``love``; 👎 ``dislike``, 😡 ``angry``) on one of
  the bot's or an agent's messages (``reaction.mid``) is feedback on that reply
  (:mod:`channels.reactions`); it is recorded and not answered.
- Attachments without text (images, stickers, audio, video, files, locations, shares) and
  other reactions get one polite ``unsupported_text`` reply.
- Echoes of the page's own messages (``is_echo``), deleted messages, reads, deliveries and
  other events are acknowledged and ignored; an event delivered twice (the same
  ``message.mid``) is answered once.

Replies: ``POST {graph_base}/me/messages`` (bearer page access token) with
``recipient.id``, ``messaging_type: RESPONSE`` and ``message.text`` (split at 2000
characters, 1000 on Instagram); a reply's buttons become ``quick_replies`` (up to 13,
titles cut to 20 characters) on its last part. The 24-hour window (kept in memory, per
process): ``push`` is used only by human agents, so inside the window it sends a
``RESPONSE``; after it, and for a sender this process has not heard from, a
``MESSAGE_TAG`` with ``tag: HUMAN_AGENT``, which Meta allows up to 7 days after the
person's last message; after 7 days it raises ChannelError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from channels.delivery import reply_text, split_text
from channels.meta_graph import (
    Buttons,
    GraphChannel,
    GraphSettings,
    Inbound,
    choice_id,
    choices,
    id_field,
    member,
    objects,
    string,
)
from channels.pacing import RateLimit
from channels.service_window import WINDOW_S
from foundation.errors import ChannelError
from foundation.feedback import DOWN, UP, rating_metadata, rating_of, rating_text
from foundation.messages import BotReply

log = logging.getLogger(__name__)
HUMAN_AGENT_S = 7 * 24 * 3600.0  # how long after the person's last message an agent may write
MAX_QUICK_REPLIES = 13
MAX_KEY = 500  # a dedup key built from an event's fields
NAMED_RATINGS = {"like": UP, "love": UP, "dislike": DOWN, "angry": DOWN}  # reaction.reaction


@dataclass(frozen=True, kw_only=True)
class MessengerSettings(GraphSettings):
    """The Meta app's secret, the webhook's verify token and the Page access token (for
    Instagram: the token of the Page linked to the account, or an Instagram user token with
    ``graph_base: https://graph.instagram.com/v21.0``)."""


def quick_replies(buttons: Buttons) -> list[dict[str, str]]:
    options = choices(buttons)
    if len(options) > MAX_QUICK_REPLIES:
        log.warning("messenger: %d quick replies at most; %d dropped", MAX_QUICK_REPLIES,
                    len(options) - MAX_QUICK_REPLIES)
    return [{"content_type": "text", "title": title[:20],
             "payload": choice_id(title, payload, 1000)}
            for title, payload in options[:MAX_QUICK_REPLIES]]


class MessengerChannel(GraphChannel):
    """Answers people who write to the Facebook Page."""

    name: ClassVar[str] = "messenger"
    Settings: ClassVar[type[Any]] = MessengerSettings
    webhook_object: ClassVar[str] = "page"
    # Send API: 300 calls a second per Page (Instagram: per professional account) for text;
    # Meta names no per-thread figure ("may be rate limited if too many messages are sent
    # to a single thread"), so one a second with bursts of 5 is kept per person.
    rate_defaults: ClassVar[RateLimit] = RateLimit(rate_per_s=300, burst=300,
                                                   each_rate_per_s=1, each_burst=5)
    max_text: ClassVar[int] = 2000

    def read(self, entry: dict[str, Any]) -> list[Inbound]:
        found = (self.inbound(event) for event in objects(entry, "messaging", "entry.messaging"))
        return [item for item in found if item is not None]

    def inbound(self, event: dict[str, Any]) -> Inbound | None:
        """The message, postback or reaction in ``event``; None for what is not answered."""
        sender = member(event, "sender")
        message, postback, reaction = (event.get(k) for k in ("message", "postback", "reaction"))
        if "id" not in sender or (isinstance(message, dict) and (
                message.get("is_echo") or message.get("is_deleted"))):
            return None  # the page's own messages, a guest without an id, deleted messages
        who = id_field(sender, "id", "'messaging[].sender.id'")
        metadata = {"timestamp": event.get("timestamp"),
                    "recipient": member(event, "recipient").get("id")}
        if isinstance(message, dict):
            text = string(member(message, "quick_reply"), "payload") or string(message, "text")
            key = id_field(message, "mid", "'messaging[].message.mid'")
            return Inbound(who, key, text, metadata)
        if isinstance(postback, dict):
            text = string(postback, "payload") or string(postback, "title") or ""
            key = string(postback, "mid") or f"postback:{who}:{event.get('timestamp')}:{text}"
            return Inbound(who, key[:MAX_KEY], text, metadata)
        if isinstance(reaction, dict) and reaction.get("action") == "react":
            key = f"reaction:{who}:{reaction.get('mid')}:{reaction.get('emoji')}"
            rating = rating_of(string(reaction, "emoji") or "") or NAMED_RATINGS.get(
                string(reaction, "reaction") or "")
            if rating is None:
                return Inbound(who, key[:MAX_KEY], None, metadata)
            rated = self.sent.text_of(string(reaction, "mid"))
            return Inbound(who, key[:MAX_KEY], rating_text(rating),
                           metadata | rating_metadata(rating, rated))
        return None  # reads, deliveries, referrals, opt-ins

    async def reply(self, sender: str, text: str, buttons: Buttons) -> None:
        await self.send(sender, text, buttons)

    async def send(self, sender: str, text: str, buttons: Buttons, *,
                   tag: str | None = None) -> None:
        """``POST me/messages``: ``text`` in parts, the quick replies on the last one."""
        *before, last = split_text(text, self.max_text)
        parts: list[dict[str, Any]] = [{"text": piece} for piece in before]
        parts.append({"text": last, **({"quick_replies": quick_replies(buttons)}
                                       if choices(buttons) else {})})
        sent: list[str | None] = []
        for message in parts:
            payload: dict[str, Any] = {"recipient": {"id": sender},
                                       "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE",
                                       "message": message}
            if tag:
                payload["tag"] = tag
            answer = await self.graph_post("me/messages", payload,
                                           what=f"{self.name} message", to=sender)
            sent.append(string(answer, "message_id") if isinstance(answer, dict) else None)
        self.sent.remember(sent, text)

    async def push(self, sender: str, reply: BotReply) -> None:
        """A human agent's message: a response inside the 24-hour window, tagged
        ``HUMAN_AGENT`` after it (up to 7 days); ChannelError after 7 days or when the
        delivery fails."""
        age = self.window.age(sender, self.clock())
        if age is not None and age > HUMAN_AGENT_S:
            raise ChannelError(f"{self.name}: the customer last wrote {age / 86400:.0f} days "
                               "ago, outside the 7-day human-agent window")
        tag = None if age is not None and age < WINDOW_S else "HUMAN_AGENT"
        await self.send(sender, reply_text(reply, citations=self.settings.show_citations),
                        reply.buttons, tag=tag)


class InstagramChannel(MessengerChannel):
    """Answers people who write to the Instagram professional account."""

    name: ClassVar[str] = "instagram"
    webhook_object: ClassVar[str] = "instagram"
    max_text: ClassVar[int] = 1000
