"""A served turn: rate limit, message checks, feedback, injection guard, dialogue, reply
guard, metrics, turn event.

Channels get :meth:`TurnPipeline.handle` / :meth:`TurnPipeline.stream` as their callbacks;
the :class:`~bot.dialogue.DialogueManager` inside still locks, routes and saves the session.
Every answered turn is logged as a ``turn`` event (no text: channel, kind, intent, latency),
which ``bot stats`` reads.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bot.errors import BotError, StoreUnavailable
from bot.runtime import BotRuntime
from bot.server.feedback import record_rating
from bot.server.guard import ReplyGuard, inspect_input
from bot.server.metrics import BotMetrics
from bot.server.security import RateLimiter
from bot.sessions.events import INJECTION_FLAGGED_EVENT, REPLY_GUARDED_EVENT, TURN_EVENT
from bot.sessions.keys import SenderIds
from bot.sessions.redaction import RedactingStore
from bot.sessions.store import Session
from foundation.feedback import feedback_of
from foundation.messages import BotReply, DeltaHook, ReplyStream, UserMessage, cleaned

log = logging.getLogger(__name__)
TEXT_KEPT = 2000  # characters of the question and answer a turn event keeps (review)


def _public_texts(runtime: BotRuntime) -> list[str]:
    if runtime.knowledge is None:
        return []
    return [text for p in runtime.knowledge.index.passages
            for text in (p.text, p.question or "", p.title or "")]


class TurnPipeline:
    """Wraps one bot's dialogue manager with the production checks."""

    def __init__(self, runtime: BotRuntime, *, limiter: RateLimiter | None = None,
                 metrics: BotMetrics | None = None, senders: SenderIds | None = None) -> None:
        config = runtime.bot.config
        self.runtime = runtime
        self.dialogue = runtime.dialogue
        self.store = runtime.store
        self.security = config.security
        self.max_chars = config.server.max_message_chars
        self.limiter = limiter
        self.senders = senders  # hashes sender ids that are personal data (sessions/keys.py)
        self.metrics = metrics or BotMetrics(config.name)
        self.guard = ReplyGuard(config, _public_texts(runtime))
        store = runtime.store  # a masked history keeps the user's own data as digests
        self.user_gave: Callable[[Session, str], bool] = store.user_gave \
            if isinstance(store, RedactingStore) else lambda _session, _key: False

    def swap(self, runtime: BotRuntime) -> BotRuntime:
        """Answer new turns with ``runtime``'s models (same store; turns in flight finish on
        the old ones); returns the runtime replaced. Channel, security and server settings
        stay as they were at start."""
        old, self.runtime = self.runtime, runtime
        self.dialogue = runtime.dialogue
        self.guard = ReplyGuard(runtime.bot.config, _public_texts(runtime))
        return old

    async def handle(self, message: UserMessage) -> BotReply:
        """Answer one message (see :meth:`stream`)."""
        return await self.stream(message).result()

    def stream(self, message: UserMessage) -> ReplyStream:
        """The reply as it is produced; iterating raises :class:`RateLimited` or dialogue
        errors."""
        return ReplyStream.within(self._served(message))

    @asynccontextmanager
    async def _served(self, message: UserMessage) -> AsyncIterator[ReplyStream]:
        started = time.perf_counter()
        bot = self.metrics.bot
        if self.senders is not None:  # before any key is built from it
            message = dataclasses.replace(
                message, sender=self.senders.stored(message.channel, message.sender))
        if self.limiter is not None:  # it counts what it refuses in the metrics
            await self.limiter.check("sender", message.session_key)

        message = cleaned(message, max_chars=self.max_chars)  # 400 before any other check
        rating = feedback_of(message)  # a reaction or a typed thumbs: recorded, not answered
        if rating is not None and (noted := await record_rating(self.store, message, rating)):
            yield ReplyStream.of(noted)
            return

        async def finish(reply: BotReply) -> BotReply:
            return await self._finish(message, reply, started)

        mode = self.security.injection_guard
        if mode != "off":
            verdict = inspect_input(message.text)
            if verdict.flagged:
                self.metrics.guarded.labels(bot, f"injection_{mode}").inc()
                await self.store.log_event(message.session_key, INJECTION_FLAGGED_EVENT,
                                           {"flags": list(verdict.flags), "action": mode})
                if mode == "block":
                    blocked = BotReply(text=self.security.injection_reply, kind="blocked")
                    yield ReplyStream.of(blocked).on_reply(finish)
                    return
                message = dataclasses.replace(message, text=verdict.text, metadata={
                    **message.metadata, "injection_flags": list(verdict.flags)})
        asked = message

        async def checked(session: Session, reply: BotReply) -> BotReply:
            return await self._checked(asked, session, reply)

        with self.metrics.active():
            try:  # the guard runs before the turn is recorded: history = what was sent
                yield (self.dialogue.stream(message, check=checked)
                       .on_delta(self._stream_guard(message)).on_reply(finish))
            except BotError as exc:
                self.metrics.errors.labels(bot, type(exc).__name__).inc()
                raise

    def _stream_guard(self, message: UserMessage) -> DeltaHook:
        """Passes deltas while the text so far passes the guard; once one does not, holds
        back the rest (the final reply then carries the checked text)."""
        shown: str | None = ""

        def check(delta: str) -> str | None:
            nonlocal shown
            if shown is None or self.guard.check(shown + delta, own=[message.text]).problems:
                shown = None
                return None
            shown += delta
            return delta

        return check

    async def _checked(self, message: UserMessage, session: Session,
                       reply: BotReply) -> BotReply:
        """The reply after the guard: no system prompt, no personal data of others."""
        if not self.guard.check(reply.text, own=[message.text]).problems:
            return reply
        own = [message.text, *(str(v) for v in session.slots.values()),
               *(str(t["text"]) for t in session.history if t.get("role") == "user")]
        checked = self.guard.check(reply.text, own=own,
                                   gave=functools.partial(self.user_gave, session))
        if not checked.problems:
            return reply
        for problem in checked.problems:
            self.metrics.guarded.labels(self.metrics.bot, f"reply_{problem}").inc()
        await self.store.log_event(message.session_key, REPLY_GUARDED_EVENT,
                                   {"problems": list(checked.problems)})
        if "system_prompt" in checked.problems:
            return dataclasses.replace(reply, text=checked.text, citations=(), kind="blocked")
        return dataclasses.replace(reply, text=checked.text)

    async def _finish(self, message: UserMessage, reply: BotReply, started: float) -> BotReply:
        seconds = time.perf_counter() - started
        self.metrics.observe_turn(channel=message.channel, kind=reply.kind, seconds=seconds,
                                  handoff=reply.handoff)
        try:  # the turn is saved already: losing its statistics must not fail it
            await self.store.log_event(message.session_key, TURN_EVENT, {
                "channel": message.channel, "kind": reply.kind, "intent": reply.intent,
                "confidence": reply.confidence, "handoff": reply.handoff,
                "decision": reply.decision, "ms": round(seconds * 1000, 1),
                "question": message.text[:TEXT_KEPT], "answer": reply.text[:TEXT_KEPT],
                "citations": [c.passage_id for c in reply.citations]})  # for review
        except StoreUnavailable as exc:
            log.warning("turn event not recorded: %s", exc)
        return reply


PIPELINE: web.AppKey[TurnPipeline] = web.AppKey("pipeline", TurnPipeline)
