"""Outgoing HTTP calls of channels: retries with exponential backoff, and background tasks.

Connectors that answer the platform at once (202/200) and send the reply afterwards run the
turn in a background task of their :class:`Outbox` (:meth:`Outbox.answer`: the reply, or an
apology when the turn fails, never silence) and post it with :meth:`Outbox.post`, which
retries connection errors, timeouts, 429 and 5xx responses.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from foundation.checks import between, check, positive
from foundation.errors import BotError, ChannelError
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
HeadersFor = Callable[[bytes], Mapping[str, str]]
SORRY = "Sorry, something went wrong on our side. Please try again in a moment."


class DeliveryError(ChannelError):
    """An outgoing message could not be delivered (after the retries it was allowed)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How an outgoing POST is retried: ``base_delay_s * 2**n`` between attempts, capped."""

    attempts: int = check(between(1, 20), default=5)
    base_delay_s: float = check(positive, default=0.5)
    max_delay_s: float = check(positive, default=30.0)
    timeout_s: float = check(positive, default=10.0)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait = self.base_delay_s * 2 ** (attempt - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay_s)


def _retry_after(response: aiohttp.ClientResponse, body: Any) -> float | None:
    header = response.headers.get("Retry-After", "")
    if header.isdigit():
        return float(header)
    params = body.get("parameters") if isinstance(body, dict) else None  # Telegram's 429
    value = params.get("retry_after") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) else None


class Outbox:
    """One channel's HTTP client and background tasks; :meth:`close` on shutdown."""

    def __init__(self, what: str, policy: RetryPolicy) -> None:
        self.what = what
        self.policy = policy
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client, opened on first use (inside the running loop)."""
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s))
        return self._client

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``work`` in the background; its failure is logged, never raised."""
        task = asyncio.get_running_loop().create_task(work, name=f"{self.what}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", task.get_name(), task.exception(),
                      exc_info=task.exception())

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the background tasks running now (all of them, or until ``timeout``)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self, grace_s: float = 5.0) -> None:
        """Let running deliveries finish for up to ``grace_s``, cancel the rest, close."""
        await self.drain(grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._client is not None:
            await self._client.close()

    async def answer(self, message: UserMessage, *,
                     on_message: Callable[[UserMessage], Awaitable[BotReply]],
                     send: Callable[[str], Awaitable[None]], citations: bool,
                     about: str) -> None:
        """Run the turn and ``send`` its text, or an apology when the turn fails; a
        delivery that still fails after its retries is logged with ``about`` (the event)."""
        try:
            text = reply_text(await on_message(message), citations=citations)
        except ChannelError as exc:  # a message we cannot take, a rate limit
            text = f"Sorry, I couldn't process that: {exc}"
        except BotError as exc:
            log.warning("%s: turn failed: %s", self.what, exc)
            text = SORRY
        except Exception:  # a bug: the customer still hears back
            log.exception("%s: turn failed unexpectedly", self.what)
            text = SORRY
        try:
            await send(text)
        except DeliveryError as exc:
            log.error("%s: gave up sending the reply to %s: %s", self.what, about, exc)

    async def post(self, url: str, payload: Any, *, what: str,
                   headers: Mapping[str, str] | None = None,
                   headers_for: HeadersFor | None = None, form: bool = False) -> Any:
        """POST ``payload`` as JSON (``form=True``: a flat mapping, form-encoded as
        Twilio's and OAuth token endpoints want); the decoded 2xx response (or ``None`` when
        not JSON).

        ``headers_for(body)`` adds headers computed per attempt (fresh signatures). Raises
        :class:`DeliveryError` on a 4xx (other than 429) or when the attempts run out.
        """
        if form:
            body = urlencode(payload).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        policy, problem = self.policy, "not attempted"
        for attempt in range(1, policy.attempts + 1):
            sent = {"Content-Type": content_type, **(headers or {}),
                    **(headers_for(body) if headers_for else {})}
            retry_after: float | None = None
            try:
                async with self.client().post(url, data=body, headers=sent) as response:
                    text = await response.text(errors="replace")
                    try:
                        decoded: Any = json.loads(text) if text else None
                    except json.JSONDecodeError:
                        decoded = None
                    if 200 <= response.status < 300:
                        return decoded
                    problem = f"HTTP {response.status}: {text[:200]}"
                    if response.status != 429 and response.status < 500:
                        raise DeliveryError(f"{what} was refused ({problem})")
                    retry_after = _retry_after(response, decoded)
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < policy.attempts:
                wait = policy.delay(attempt, retry_after)
                log.warning("%s failed (attempt %d of %d, %s); retrying in %.2f s",
                            what, attempt, policy.attempts, problem, wait)
                await asyncio.sleep(wait)
        raise DeliveryError(f"{what} failed after {policy.attempts} attempts ({problem})")


class RecentIds:
    """The last ``size`` ids seen: platforms redeliver an event they think was lost."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; False when it was seen already."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def reply_text(reply: BotReply, *, citations: bool = True) -> str:
    """The reply as plain text, with a ``Sources:`` line naming the cited passages."""
    titles = list(dict.fromkeys(c.title or c.passage_id for c in reply.citations))
    if not citations or not titles:
        return reply.text
    return f"{reply.text}\n\nSources: {'; '.join(titles)}"


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at line or word ends."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text or not pieces else pieces
