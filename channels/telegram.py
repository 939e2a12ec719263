"""Telegram channel: Bot API webhook updates in, ``sendMessage`` out.

Register the webhook once with ``setWebhook`` (``url`` = ``https://<bot>/webhooks/telegram``,
``secret_token`` = ``secret_token`` below); Telegram then sends every
`Update <https://core.telegram.org/bots/api#update>`_ with the header
``X-Telegram-Bot-Api-Secret-Token``. The channel answers 200 at once and sends the reply
with ``POST {api_base}/bot{token}/sendMessage`` (``chat_id``, ``text``), retried on 429/5xx.
Sessions are keyed ``telegram:<from.id>``; replies go to ``message.chat.id``. Updates
without text (stickers, photos, edits) are acknowledged and ignored.

Feedback: with ``message_reaction`` in the webhook's ``allowed_updates``, a person's 👍 or
👎 (or another rating emoji, :mod:`foundation.feedback`) on one of the bot's messages is
feedback on that reply (:mod:`channels.reactions`); it is recorded and not answered.
"""

from __future__ import annotations

import logging
import re
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
from foundation.checks import check, http_url
from foundation.errors import BadRequest
from foundation.feedback import rating_of, reaction_message
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # Telegram's limit for one message
# Telegram's bot FAQ: about 30 messages a second overall, about one a second in one chat
# (short bursts pass; a group allows some 20 a minute). Lanes are chats.
TELEGRAM_RATE = RateLimit(rate_per_s=30, burst=30, each_rate_per_s=1, each_burst=3)


def bot_token(value: Any) -> str | None:
    """Config check: a token as BotFather gives it (``123456:ABC-...``)."""
    return None if re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value) else \
        "must be a bot token like '123456:ABC-DEF...' from @BotFather"


def secret_token(value: Any) -> str | None:
    """Config check: Telegram allows 1-256 characters A-Z, a-z, 0-9, _ and -."""
    return None if re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value) else \
        "must be 1-256 characters of A-Z, a-z, 0-9, '_' or '-'"


@dataclass(frozen=True)
class TelegramSettings:
    """The bot token, the webhook's secret token and where the Bot API lives."""

    token: str = check(bot_token)
    secret_token: str = check(secret_token)
    api_base: str = check(http_url, default="https://api.telegram.org")
    show_citations: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)  # over TELEGRAM_RATE


def telegram_ok(result: Any) -> str | None:
    """What is wrong with a Bot API answer (None when it says ``ok``)."""
    if isinstance(result, dict) and result.get("ok"):
        return None
    return f"telegram answered {str(result)[:200]}"


def _int_field(data: Any, *path: str) -> int:
    value = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"update has no integer '{'.'.join(path)}'")
    return value


class TelegramChannel:
    """Receives Telegram updates on a webhook and answers in the same chat."""

    name: ClassVar[str] = "telegram"
    Settings: ClassVar[type[Any]] = TelegramSettings

    def __init__(self, settings: TelegramSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry, settings.rate_limit.over(TELEGRAM_RATE))
        self.seen = RecentIds()
        self.sent = SentMessages()  # "<chat id>:<message id>" of each sent message -> its text

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return [web.post(prefix, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not same_secret(given, self.settings.secret_token):
            raise unauthorized(f"missing or wrong {SECRET_HEADER} header")
        update = parse_json(await request.read())
        update_id = _int_field(update, "update_id")
        reaction = update.get("message_reaction")
        if isinstance(reaction, dict):
            return self.reaction(update_id, reaction)
        message = update.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return ignored("not a text message")
        chat_id = _int_field(message, "chat", "id")
        user_id = _int_field(message, "from", "id")
        if not self.seen.add(str(update_id)):
            return ignored("duplicate update")
        incoming = UserMessage(sender=str(user_id), text=message["text"], channel=self.name,
                               metadata={"chat_id": chat_id, "update_id": update_id,
                                         "message_id": message.get("message_id")})
        self.outbox.spawn(self._answer(incoming, chat_id), name=f"update {update_id}")
        return web.json_response({"ok": True})

    def reaction(self, update_id: int, reaction: dict[str, Any]) -> web.Response:
        """A person's rating reaction on one of the bot's messages, recorded as feedback."""
        emojis = [given.get("emoji") for given in reaction.get("new_reaction") or []
                  if isinstance(given, dict) and given.get("type") == "emoji"]
        rating = next((r for e in emojis if isinstance(e, str) and (r := rating_of(e))), None)
        if rating is None or not isinstance(reaction.get("user"), dict):
            return ignored("not a person's rating")
        chat_id, user_id = _int_field(reaction, "chat", "id"), _int_field(reaction, "user", "id")
        if not self.seen.add(str(update_id)):
            return ignored("duplicate update")
        rated = self.sent.text_of(f"{chat_id}:{reaction.get('message_id')}")
        message = reaction_message(str(user_id), self.name, rating, rated_text=rated,
                                   metadata={"chat_id": chat_id, "update_id": update_id})
        self.outbox.spawn(self._answer(message, chat_id), name=f"update {update_id}")
        return web.json_response({"ok": True})

    async def _answer(self, message: UserMessage, chat_id: int) -> None:
        async def send(text: str) -> None:
            await self.send(chat_id, text)

        await self.outbox.answer(message, on_message=self.on_message, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"update {message.metadata.get('update_id')}")

    async def send(self, chat_id: int | str, text: str) -> None:
        """``sendMessage`` to ``chat_id``, split at Telegram's 4096-character limit."""
        url = f"{self.settings.api_base.rstrip('/')}/bot{self.settings.token}/sendMessage"
        sent: list[str | None] = []
        for piece in split_text(text, MAX_TEXT):
            answer = await self.outbox.post(url, {"chat_id": chat_id, "text": piece},
                                            to=str(chat_id), what="telegram sendMessage",
                                            accept=telegram_ok)
            result = answer.get("result") if isinstance(answer, dict) else None
            if isinstance(result, dict) and "message_id" in result:
                sent.append(f"{chat_id}:{result['message_id']}")
        self.sent.remember(sent, text)

    async def push(self, sender: str, reply: BotReply) -> None:
        """Message user ``sender`` (their private chat with the bot); DeliveryError if it fails."""
        chat: int | str = int(sender) if sender.lstrip("-").isdigit() else sender
        await self.send(chat, reply_text(reply, citations=self.settings.show_citations))

    async def close(self) -> None:
        await self.outbox.close()
