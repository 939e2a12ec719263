"""The workers of one bot tell each other about the desk: Redis pub/sub (``sessions.store:
redis`` only; docs/desk.md, "Several workers").

Every desk event a worker emits is published once on ``<prefix>:desk:events`` as JSON with
the worker's ``origin``; every worker hears the events of the others (never its own) and
relays them to its own desks and customers (:class:`~bot.server.desk.hub.DeskHub`):

- ``{"type": "changed", "id", "what", "agent"}``: a conversation changed (a desk frame)
- ``{"type": "presence"}``: the agents online changed (read again from Redis)
- ``{"type": "push", "id", "channel", "sender", "reply"}``: a message for a customer whose
  widget may be connected to another worker; the worker that pushed it answers
  ``{"type": "pushed", "id"}``, so the sender knows it arrived (else it queues it).

Redis going away never fails a turn or a desk action: calls give up fast, the worker keeps
serving its own desks and customers, says so once in the log, and resubscribes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.sessions.redis_store import display_url
from foundation.messages import BotReply

log = logging.getLogger(__name__)
T = TypeVar("T")
Event = dict[str, Any]
CALL_TIMEOUT_S = 1.5  # one Redis call: a frozen Redis must not hold a desk action long
ACK_WAIT_S = 1.0  # how long a message for a customer elsewhere waits for a worker to push it
RETRY_MAX_S = 5.0  # the longest pause between two tries to subscribe again
REPLY_FIELDS = ("text", "kind", "handoff", "agent", "buttons")  # what a pushed message carries


def reply_of(data: Any) -> BotReply | None:
    """The customer's message of a ``push`` event (None when malformed)."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return None
    agent = data.get("agent")
    buttons = data.get("buttons") or []
    return BotReply(text=data["text"], kind=str(data.get("kind") or "agent"),
                    handoff=bool(data.get("handoff")),
                    agent=agent if isinstance(agent, str) else None,
                    buttons=tuple(b for b in buttons if isinstance(b, dict)))


class DeskRelay:
    """One worker's end of the shared channel: publish, hear the others, push elsewhere."""

    def __init__(self, url: str, prefix: str) -> None:
        self.shown = display_url(url)
        self.prefix = prefix
        self.channel = f"{prefix}:desk:events"
        self.origin = uuid.uuid4().hex  # this worker
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=1, socket_timeout=CALL_TIMEOUT_S,
            health_check_interval=10, retry=Retry(NoBackoff(), 0))
        self.on_event: Callable[[Event], Awaitable[object]] | None = None  # changed, presence
        self.on_push: Callable[[str, str, BotReply], Awaitable[bool]] | None = None
        self.on_connect: Callable[[], Awaitable[object]] | None = None  # (re)subscribed
        self.down = False  # Redis failed last time (said once in the log)
        self._acks: dict[str, asyncio.Future[bool]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        """Subscribe in the background (and again whenever the connection drops)."""
        if self._listener is None:
            self.origin = uuid.uuid4().hex  # each process its own, even if forked after init
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def _failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("desk relay: Redis %s failed (%s); desk updates reach this worker's "
                        "desks and customers only until it is back", self.shown,
                        str(exc) or type(exc).__name__)

    def _working(self) -> None:
        if self.down:
            self.down = False
            log.warning("desk relay: Redis %s is back; desk updates reach every worker "
                        "again", self.shown)

    async def call(self, what: Callable[[], Awaitable[T]]) -> T | None:
        """``what()`` against Redis, or None when Redis fails (logged once, never raised)."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                result = await what()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return None
        self._working()
        return result

    async def publish(self, event: Event) -> bool:
        """Tell the other workers (False when Redis failed)."""
        text = json.dumps({**event, "origin": self.origin}, ensure_ascii=False)
        return await self.call(lambda: self.client.publish(self.channel, text)) is not None

    async def push(self, channel: str, sender: str, reply: BotReply, *,
                   wait: bool) -> bool:
        """Ask the other workers to push ``reply`` to ``sender``'s open connections of
        ``channel``; with ``wait``, True once one of them did (within :data:`ACK_WAIT_S`)."""
        push_id = uuid.uuid4().hex
        data = {k: v for k, v in reply.to_dict().items() if k in REPLY_FIELDS}
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if wait:
            self._acks[push_id] = done
        try:
            if not await self.publish({"type": "push", "id": push_id, "channel": channel,
                                       "sender": sender, "reply": data}):
                return False
            if not wait:
                return False
            try:
                async with asyncio.timeout(ACK_WAIT_S):
                    return await done
            except TimeoutError:
                return False  # nobody holds that customer's connection
        finally:
            self._acks.pop(push_id, None)

    async def _listen(self) -> None:
        delay = 0.1
        while not self._closed:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._working()
                self.subscribed.set()
                delay = 0.1
                if self.on_connect is not None:
                    await self._quietly(self.on_connect())
                while not self._closed:  # (a cancel that meets the read's timeout can
                    # be lost on Python 3.11: the flag ends the loop all the same)
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._receive(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                self.subscribed.clear()
                self._failed(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MAX_S)

    async def _receive(self, raw: bytes | str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        if not isinstance(event, dict) or event.get("origin") == self.origin:
            return  # our own event, told to our desks already
        kind = event.get("type")
        if kind == "pushed":
            waiting = self._acks.get(str(event.get("id")))
            if waiting is not None and not waiting.done():
                waiting.set_result(True)
        elif kind == "push":
            await self._quietly(self._push_here(event))
        elif self.on_event is not None:
            await self._quietly(self.on_event(event))

    async def _push_here(self, event: Event) -> None:
        reply = reply_of(event.get("reply"))
        channel, sender = event.get("channel"), event.get("sender")
        if self.on_push is None or reply is None or not isinstance(channel, str) \
                or not isinstance(sender, str):
            return
        if await self.on_push(channel, sender, reply):
            await self.publish({"type": "pushed", "id": event.get("id")})

    @staticmethod
    async def _quietly(work: Awaitable[object]) -> None:
        """A relayed event's work: a failure is logged, the listener goes on."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("desk relay: relaying an event failed")

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener], timeout=3.0)
            self._listener = None
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()
