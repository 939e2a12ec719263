"""The dialogue manager: one turn = lock the session, route, record, save."""

from __future__ import annotations

import asyncio
import logging
import unicodedata

from bot.config import BotConfig
from bot.errors import BadRequest, TurnTimeout
from bot.messages import BotReply, UserMessage
from bot.routing import Router
from bot.sessions import SessionStore

log = logging.getLogger(__name__)


def clean_text(text: object, *, max_chars: int) -> str:
    """Validate and normalise a user message; raise :class:`BadRequest` when unusable."""
    if not isinstance(text, str):
        raise BadRequest(f"'message' must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise BadRequest(f"'message' is too long: {len(text)} characters (limit {max_chars})")
    if "\x00" in text or any(unicodedata.category(c) == "Cs" for c in text):
        raise BadRequest("'message' contains binary data")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise BadRequest("'message' is empty")
    return cleaned


class DialogueManager:
    """Handles messages for one bot; turns of the same session run strictly in order."""

    def __init__(self, config: BotConfig, *, router: Router, store: SessionStore) -> None:
        self.config = config
        self.router = router
        self.store = store

    async def handle(self, message: UserMessage) -> BotReply:
        """Answer one message; raises :class:`BadRequest` or :class:`TurnTimeout`."""
        text = clean_text(message.text, max_chars=self.config.server.max_message_chars)
        message = UserMessage(sender=message.sender, text=text, channel=message.channel,
                              metadata=message.metadata)
        try:
            return await asyncio.wait_for(self._turn(message),
                                          timeout=self.config.server.turn_timeout_s)
        except TimeoutError as exc:
            raise TurnTimeout(f"no reply within {self.config.server.turn_timeout_s:g} s") from exc

    async def _turn(self, message: UserMessage) -> BotReply:
        key = message.session_key
        async with self.store.lock(key):
            session = await self.store.get(key, channel=message.channel, sender=message.sender)
            reply = await self.router.route(session, message)
            limit = self.config.sessions.max_history
            session.add("user", message.text, max_history=limit)
            session.add("bot", reply.text, max_history=limit, kind=reply.kind,
                        citations=[c.passage_id for c in reply.citations])
            await self.store.save(session)
            log.debug("turn %s kind=%s", key, reply.kind)
        return reply
