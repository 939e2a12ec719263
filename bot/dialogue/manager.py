"""The dialogue manager: one turn = lock the session, route, record, save."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.definition.config import BotConfig
from bot.dialogue.router import Router
from bot.errors import TurnTimeout, library_errors
from bot.sessions.store import Session, SessionStore
from channels.visitors import IDENTITY
from foundation.messages import BotReply, ReplyStream, UserMessage, cleaned

log = logging.getLogger(__name__)
ReplyCheck = Callable[[Session, BotReply], Awaitable[BotReply]]


def remember_identity(session: Session, message: UserMessage) -> None:
    """Keep a verified customer's attributes (the ``identity`` metadata, which a channel
    sets only from a signed identity) as ``session.state["user"]``: templates see them as
    ``user``, forms skip the slots they fill, and the desk shows them."""
    identity = message.metadata.get(IDENTITY)
    if isinstance(identity, dict) and identity.get("id"):
        session.state["user"] = {str(k): str(v) for k, v in identity.items()}


class DialogueManager:
    """Handles messages for one bot; turns of the same session run strictly in order."""

    def __init__(self, config: BotConfig, *, router: Router, store: SessionStore) -> None:
        self.config = config
        self.router = router
        self.store = store

    def _clean(self, message: UserMessage) -> UserMessage:
        return cleaned(message, max_chars=self.config.server.max_message_chars)

    async def handle(self, message: UserMessage, *, check: ReplyCheck | None = None) -> BotReply:
        """Answer one message; raises :class:`BadRequest` or :class:`TurnTimeout`."""
        return await self.stream(message, check=check).result()

    def stream(self, message: UserMessage, *, check: ReplyCheck | None = None) -> ReplyStream:
        """The reply to ``message`` as it is produced.

        ``check`` (the server's reply guard) may change the reply before it is recorded, so
        the history holds what the user was sent. The session stays locked until the reply
        is complete and saved, so turns of one user never interleave. Iterating it raises
        :class:`BadRequest` or :class:`TurnTimeout`.
        """
        return ReplyStream.within(self._turn(message, check))

    @asynccontextmanager
    async def _turn(self, message: UserMessage,
                    check: ReplyCheck | None) -> AsyncIterator[ReplyStream]:
        message = self._clean(message)
        limit = self.config.server.turn_timeout_s
        key = message.session_key
        try:
            with library_errors():
                async with asyncio.timeout(limit), self.store.lock(key):
                    session = await self.store.get(key, channel=message.channel,
                                                   sender=message.sender)
                    remember_identity(session, message)

                    async def record(reply: BotReply) -> BotReply:
                        self._record(session, message, reply)
                        await self.store.save(session)
                        log.debug("turn %s kind=%s", key, reply.kind)
                        return reply

                    stream = await self.router.route(session, message)
                    if check is not None:
                        stream = stream.on_reply(functools.partial(check, session))
                    yield stream.on_reply(record)
        except TimeoutError as exc:
            raise TurnTimeout(f"no reply within {limit:g} s") from exc

    def _record(self, session: Session, message: UserMessage, reply: BotReply) -> None:
        limit = self.config.sessions.max_history
        session.add("user", message.text, max_history=limit)
        session.add("bot", reply.text, max_history=limit, kind=reply.kind,
                    citations=[c.passage_id for c in reply.citations])
