"""WhatsApp channel (Cloud API): the ``messages`` webhook in, the Graph Messages API out.

Set the app's WhatsApp webhook to ``https://<bot>/webhooks/whatsapp`` with the channel's
``verify_token`` and subscribe to the ``messages`` field; verification and signatures are
those of :mod:`channels.meta_graph`. The channel answers 200 at once and replies with
``POST {graph_base}/{phone_number_id}/messages`` (``messaging_product: whatsapp``, ``to`` =
the sender's ``from``), retried on 429/5xx. Sessions are keyed ``whatsapp:<from>`` (the
person's WhatsApp id, their phone number).

What the bot does with each kind of message:

- ``text``; ``interactive`` ``button_reply`` and ``list_reply`` (the tapped choice's id,
  which is the bot's button payload) and template ``button`` answers are read as text.
- A reaction with a thumbs up or down (or another rating emoji, :mod:`foundation.feedback`)
  to one of the bot's or an agent's messages is feedback on that reply (its
  ``reaction.message_id``, :mod:`channels.reactions`); it is recorded and not answered.
- Images, audio, video, documents, locations, stickers, contacts, other reactions and kinds
  the Cloud API itself does not support get one polite ``unsupported_text`` reply.
  ``system`` notices (a changed number) and reactions taken back (no emoji) are ignored.
- ``statuses`` (sent, delivered, read, failed) are logged and recorded: the last status per
  message id in :attr:`WhatsAppChannel.statuses`, a count per status in
  :attr:`WhatsAppChannel.status_counts`; they are not answered.
- A message delivered twice (the same ``id``) is answered once. Events for another phone
  number of the same business account are ignored.

Replies are text (split at 4096 characters); a reply with buttons becomes an interactive
message: up to 3 reply buttons (titles cut to 20 characters), else a list of up to 10 rows
under ``list_button``. The 24-hour window (see :mod:`channels.meta_graph`; kept in memory,
per process): a reply to a message is always inside it; ``push`` (a human agent's message,
the handback note) sends free text inside it and the configured ``template`` outside it, or
for a sender this process has not heard from; without a template it raises ChannelError.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, OrderedDict
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
from channels.registry import OnMessage, OnStream
from channels.service_window import WINDOW_S
from foundation.checks import check, non_empty
from foundation.errors import ChannelError
from foundation.feedback import rating_metadata, rating_of, rating_text
from foundation.messages import BotReply

log = logging.getLogger(__name__)
MAX_TEXT = 4096  # a text message's body
MAX_BODY = 1024  # an interactive message's body
MAX_BUTTONS = 3
MAX_ROWS = 10
MAX_PARAMETER = 1024
IGNORED_KINDS = frozenset({"system"})
KNOWN_STATUSES = 10_000


def template_name(value: Any) -> str | None:
    """Config check: WhatsApp template names are lowercase letters, digits and '_'."""
    return None if re.fullmatch(r"[a-z0-9_]{1,512}", value) else \
        "must be a template name of lowercase letters, digits and '_'"


@dataclass(frozen=True)
class TemplateSettings:
    """An approved message template, sent instead of free text outside the window.
    ``text_parameter``: the template's body has one variable, ``{{1}}``, that receives the
    message (newlines folded into spaces, cut to 1024 characters)."""

    name: str = check(template_name)
    language: str = check(non_empty)
    text_parameter: bool = False


@dataclass(frozen=True, kw_only=True)
class WhatsAppSettings(GraphSettings):
    """The Meta app's secret and tokens, the business phone number's id, and the template
    for messages outside the 24-hour window."""

    phone_number_id: str = check(non_empty)
    template: TemplateSettings | None = None
    list_button: str = check(non_empty, default="Choose")


def message_text(message: dict[str, Any]) -> str | None:
    """What the bot reads of a message: its text, or None for a kind it cannot read."""
    kind = message.get("type")
    if kind == "text":
        return string(member(message, "text"), "body")
    if kind == "interactive":
        interactive = member(message, "interactive")
        answer = string(interactive, "type")
        if answer in ("button_reply", "list_reply"):
            chosen = member(interactive, answer)
            return string(chosen, "id") or string(chosen, "title")
        return None
    if kind == "button":  # a quick-reply button of a template
        button = member(message, "button")
        return string(button, "payload") or string(button, "text")
    return None


def interactive(body: str, buttons: Buttons, list_button: str) -> dict[str, Any]:
    """Reply buttons for up to three choices, else a list of up to ten rows."""
    options = choices(buttons)
    if len(options) <= MAX_BUTTONS:
        action: dict[str, Any] = {"buttons": [
            {"type": "reply", "reply": {"id": choice_id(title, payload, 256),
                                        "title": title[:20]}}
            for title, payload in options]}
        kind = "button"
    else:
        if len(options) > MAX_ROWS:
            log.warning("whatsapp: a list shows %d rows; %d choices dropped", MAX_ROWS,
                        len(options) - MAX_ROWS)
        rows = [{"id": choice_id(title, payload, 200), "title": title[:24]}
                for title, payload in options[:MAX_ROWS]]
        action = {"button": list_button[:20], "sections": [{"rows": rows}]}
        kind = "list"
    return {"type": "interactive",
            "interactive": {"type": kind, "body": {"text": body}, "action": action}}


def template_message(template: TemplateSettings, text: str) -> dict[str, Any]:
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.text_parameter:
        folded = " ".join(text.split())[:MAX_PARAMETER]
        content["components"] = [{"type": "body",
                                  "parameters": [{"type": "text", "text": folded}]}]
    return {"type": "template", "template": content}


class WhatsAppChannel(GraphChannel):
    """Answers people who write to the business's WhatsApp number."""

    name: ClassVar[str] = "whatsapp"
    Settings: ClassVar[type[Any]] = WhatsAppSettings
    webhook_object: ClassVar[str] = "whatsapp_business_account"
    # Cloud API throughput: 80 messages a second per business number by default; the pair
    # rate: about one message every 6 seconds to one user, short bursts allowed (error
    # 131056). Lanes are the customers' numbers.
    rate_defaults: ClassVar[RateLimit] = RateLimit(rate_per_s=80, burst=80,
                                                   each_rate_per_s=1 / 6, each_burst=10)
    settings: WhatsAppSettings

    def __init__(self, settings: WhatsAppSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        super().__init__(settings, on_message=on_message, on_stream=on_stream)
        self.statuses: OrderedDict[str, str] = OrderedDict()  # message id -> last status
        self.status_counts: Counter[str] = Counter()

    def read(self, entry: dict[str, Any]) -> list[Inbound]:
        found: list[Inbound] = []
        for change in objects(entry, "changes", "entry.changes"):
            value = member(change, "value")
            if change.get("field", "messages") != "messages":
                continue
            number = string(member(value, "metadata"), "phone_number_id")
            if number is not None and number != self.settings.phone_number_id:
                log.warning("whatsapp: ignored an event for phone number id %s (this channel "
                            "serves %s)", number, self.settings.phone_number_id)
                continue
            for status in objects(value, "statuses", "statuses"):
                self.record(status)
            for message in objects(value, "messages", "messages"):
                kind = string(message, "type") or "unknown"
                if kind in IGNORED_KINDS or (kind == "reaction" and not string(
                        member(message, "reaction"), "emoji")):
                    continue  # a changed number; a reaction taken back (no emoji)
                found.append(self.inbound(message, kind, number))
        return found

    def inbound(self, message: dict[str, Any], kind: str, number: str | None) -> Inbound:
        """One message; a rating reaction as the rating of the message it is on."""
        text, metadata = message_text(message), {"type": kind, "phone_number_id": number}
        reaction = member(message, "reaction")
        rating = rating_of(string(reaction, "emoji") or "") if kind == "reaction" else None
        if rating is not None:
            text = rating_text(rating)
            metadata |= rating_metadata(rating, self.sent.text_of(string(reaction,
                                                                         "message_id")))
        return Inbound(sender=id_field(message, "from", "'messages[].from'"),
                       key=id_field(message, "id", "'messages[].id'"), text=text,
                       metadata=metadata)

    def record(self, status: dict[str, Any]) -> None:
        """Note a status webhook: the message's last status and a count per status."""
        message_id = id_field(status, "id", "'statuses[].id'")
        state = string(status, "status") or "unknown"
        self.statuses.pop(message_id, None)
        self.statuses[message_id] = state
        if len(self.statuses) > KNOWN_STATUSES:
            self.statuses.popitem(last=False)
        self.status_counts[state] += 1
        if state == "failed":
            errors = objects(status, "errors", "statuses[].errors")
            problem = errors[0] if errors else {}
            log.warning("whatsapp: message %s failed: %s %s", message_id, problem.get("code"),
                        problem.get("title") or problem.get("message"))
        else:
            log.info("whatsapp: message %s is %s", message_id, state)

    async def reply(self, sender: str, text: str, buttons: Buttons) -> None:
        """Text, or an interactive message when there are buttons (the text before it)."""
        sent: list[str | None] = []
        if not choices(buttons):
            for piece in split_text(text, MAX_TEXT):
                sent.append(await self.send(sender, {"type": "text", "text": {"body": piece}}))
        else:
            *before, body = split_text(text, MAX_BODY)
            for piece in before:
                sent.append(await self.send(sender, {"type": "text", "text": {"body": piece}}))
            sent.append(await self.send(sender, interactive(body, buttons,
                                                            self.settings.list_button)))
        self.sent.remember(sent, text)

    async def send(self, to: str, content: dict[str, Any]) -> str | None:
        """``POST {phone_number_id}/messages`` of one message to ``to``; its ``wamid``."""
        answer = await self.graph_post(
            f"{self.settings.phone_number_id}/messages",
            {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
             **content}, what="whatsapp message", to=to)
        messages = answer.get("messages") if isinstance(answer, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        return string(first, "id") if isinstance(first, dict) else None

    async def push(self, sender: str, reply: BotReply) -> None:
        """Free text inside the 24-hour window, the template outside it; ChannelError when
        outside it without a template, or when the delivery fails."""
        text = reply_text(reply, citations=self.settings.show_citations)
        age = self.window.age(sender, self.clock())
        if age is not None and age < WINDOW_S:
            await self.reply(sender, text, reply.buttons)
            return
        template = self.settings.template
        if template is None:
            raise ChannelError("whatsapp: the customer has not written in the last 24 hours "
                               "(the customer-service window) and no template is configured")
        await self.send(sender, template_message(template, text))
