"""Decide what the bot answers for one message, given the session so far.

Stages run in order; the first that answers wins. Today: the FAQ answerer (exact answer
or fallback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.answering import FaqAnswerer
from bot.config import BotConfig
from bot.messages import BotReply, UserMessage
from bot.sessions import Session


@dataclass
class Router:
    """Routes a message to the stage that answers it."""

    config: BotConfig
    answerer: FaqAnswerer

    async def route(self, session: Session, message: UserMessage) -> BotReply:
        reply: BotReply | None = None
        async for item in self.route_stream(session, message):
            if isinstance(item, BotReply):
                reply = item
        assert reply is not None
        return reply

    async def route_stream(self, session: Session,
                           message: UserMessage) -> AsyncIterator[str | BotReply]:
        """Text deltas of the reply as they are produced, then the final :class:`BotReply`."""
        async for item in self.answerer.stream(session, message.text):
            yield item
