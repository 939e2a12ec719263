"""Outgoing HTTP calls of channels: one delivery path with retries, idempotency keys,
per-provider rate limits and one clear log line when a delivery is given up.

Connectors that answer the platform at once (202/200) and send the reply afterwards run the
turn in a background task of their :class:`Outbox` (:meth:`Outbox.answer`: the reply, or an
apology when the turn fails, never silence) and post it with :meth:`Outbox.post`, which:

- waits for the channel's rate limit (:mod:`channels.pacing`) before every attempt;
- retries connection errors, timeouts, 429 and 5xx with exponential backoff, honouring
  ``Retry-After`` (seconds or an HTTP date; Telegram's ``parameters.retry_after``);
- gives each delivery one idempotency key, the same on all its retries, sent in the
  channel's ``idempotency_header`` where the provider reads one;
- logs one error line when it gives up: channel, what, recipient (masked when it is a phone
  number or an address), the event being answered, attempts, the last problem and the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from channels.pacing import NO_LIMIT, Pacer, RateLimit
from foundation.checks import between, check, positive
from foundation.errors import BotError, ChannelError
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
HeadersFor = Callable[[bytes], Mapping[str, str]]
Accept = Callable[[Any], str | None]
SORRY = "Sorry, something went wrong on our side. Please try again in a moment."
_ABOUT: ContextVar[str | None] = ContextVar("delivery_about", default=None)
_PHONE = re.compile(r"(?P<scheme>[a-z]+:)?(?P<plus>\+)?[\d\s().-]*\d")
_EMAIL = re.compile(r"(?P<scheme>[a-z]+:)?(?P<user>[^@\s]+)@(?P<domain>[^@\s]+)")
_IN_TEXT = re.compile(r"\+\d[\d\s-]{5,}\d|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")  # +E.164, addresses


class DeliveryError(ChannelError):
    """An outgoing message could not be delivered (after the retries it was allowed);
    ``logged`` when :meth:`Outbox.post` has written the give-up line already."""

    def __init__(self, message: str, *, logged: bool = False) -> None:
        super().__init__(message)
        self.logged = logged


@dataclass(frozen=True)
class RetryPolicy:
    """How an outgoing POST is retried: ``base_delay_s * 2**n`` between attempts, capped at
    ``max_delay_s``; a longer ``Retry-After`` is honoured up to ``max_retry_after_s``, and a
    delivery asked to wait longer than that is given up."""

    attempts: int = check(between(1, 20), default=5)
    base_delay_s: float = check(positive, default=0.5)
    max_delay_s: float = check(positive, default=30.0)
    timeout_s: float = check(positive, default=10.0)
    max_retry_after_s: float = check(positive, default=120.0)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        return wait if retry_after is None else max(wait, retry_after)


def _retry_after(response: aiohttp.ClientResponse, body: Any) -> float | None:
    """The seconds the server asked us to wait: ``Retry-After`` (seconds or an HTTP date),
    else Telegram's ``parameters.retry_after``; None when it did not say."""
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    if header:
        try:
            return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
        except (TypeError, ValueError, IndexError, OverflowError):
            pass  # not a date either: fall back to the body, then to the backoff
    params = body.get("parameters") if isinstance(body, dict) else None  # Telegram's 429
    value = params.get("retry_after") if isinstance(params, dict) else None
    return float(value) if isinstance(value, int | float) else None


def masked(recipient: str) -> str:
    """``recipient`` for a log line: a phone number or e-mail address masked (the last four
    digits, the address's domain kept), other ids (chats, channels) as they are, cut short."""
    phone = _PHONE.fullmatch(recipient)
    digits = re.sub(r"\D", "", recipient)
    if phone and len(digits) >= 6:
        return f"{phone['scheme'] or ''}{phone['plus'] or ''}***{digits[-4:]}"
    email = _EMAIL.fullmatch(recipient)
    if email:
        return f"{email['scheme'] or ''}{email['user'][0]}***@{email['domain']}"
    return recipient if len(recipient) <= 64 else recipient[:61] + "..."


def scrubbed(text: str) -> str:
    """``text`` (a provider's error) with the phone numbers (``+`` and digits) and e-mail
    addresses in it masked, as :func:`masked` does."""
    return _IN_TEXT.sub(lambda found: masked(found[0]), text)


def _to(recipient: str | None) -> str:
    return f" to {masked(recipient)}" if recipient else ""


class Outbox:
    """One channel's HTTP client, background tasks and send rate; :meth:`close` on shutdown.

    ``idempotency_header``: the request header in which the provider reads a delivery's
    idempotency key (None where it reads none; the key still names the delivery in logs).
    """

    def __init__(self, what: str, policy: RetryPolicy, rate: RateLimit = NO_LIMIT, *,
                 idempotency_header: str | None = None) -> None:
        self.what = what
        self.policy = policy
        self.pacer = Pacer(rate)
        self.idempotency_header = idempotency_header
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
        """Run the turn and ``send`` its text (unless it is empty), or an apology when the
        turn fails; a delivery that still fails after its retries is logged with ``about``
        (the event)."""
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
        if text.strip():  # else nothing to say: a handoff's silence, a recorded reaction
            await self.attempt(send(text), about=about)

    async def attempt(self, delivery: Awaitable[Any], *, about: str) -> None:
        """Await ``delivery`` (the sends answering event ``about``); a :class:`DeliveryError`
        is logged as one error line, never raised."""
        token = _ABOUT.set(about)
        try:
            await delivery
        except DeliveryError as exc:
            if not exc.logged:  # refused before or after the HTTP call (a bad answer)
                log.error("%s: gave up on the reply to %s: %s", self.what, about, exc)
        finally:
            _ABOUT.reset(token)

    def _give_up(self, what: str, to: str | None, attempts: int, problem: str, key: str,
                 summary: str) -> DeliveryError:
        about = _ABOUT.get()
        log.error("%s: gave up on %s%s%s after %d attempt%s: %s [delivery %s]",
                  self.what, what, _to(to), f" (reply to {about})" if about else "",
                  attempts, "" if attempts == 1 else "s", problem, key)
        return DeliveryError(summary, logged=True)

    async def post(self, url: str, payload: Any, *, what: str, to: str | None = None,
                   lane: str | None = None, key: str | None = None, paced: bool = True,
                   accept: Accept | None = None, headers: Mapping[str, str] | None = None,
                   headers_for: HeadersFor | None = None, form: bool = False) -> Any:
        """POST ``payload`` as JSON (``form=True``: a flat mapping, form-encoded as
        Twilio's and OAuth token endpoints want); the decoded 2xx response (or ``None`` when
        not JSON).

        ``to`` is the recipient (for the log), ``lane`` what the provider's per-conversation
        rate limit counts (``to`` unless given); ``paced=False`` skips the rate limit (a token
        request). ``key`` is the delivery's idempotency key (a fresh one unless given), the
        same on every attempt. ``accept(response)`` names what is wrong with a 2xx answer
        (Slack's ``ok: false``), None when it is fine. ``headers_for(body)`` adds headers
        computed per attempt (fresh signatures). Raises :class:`DeliveryError`, logged, on a
        4xx (other than 429), a refused answer, or when the attempts run out.
        """
        if form:
            body = urlencode(payload).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        key = key or uuid.uuid4().hex
        fixed = {"Content-Type": content_type, **(headers or {}),
                 **({self.idempotency_header: key} if self.idempotency_header else {})}
        policy, problem, lane = self.policy, "not attempted", lane or to
        for attempt in range(1, policy.attempts + 1):
            if paced:
                await self.pacer.wait(lane)
            sent = {**fixed, **(headers_for(body) if headers_for else {})}
            retry_after: float | None = None
            try:
                async with self.client().post(url, data=body, headers=sent) as response:
                    text = await response.text(errors="replace")
                    try:
                        decoded: Any = json.loads(text) if text else None
                    except json.JSONDecodeError:
                        decoded = None
                    refusal = accept(decoded) if accept and response.status < 300 else None
                    if 200 <= response.status < 300 and refusal is None:
                        return decoded
                    problem = scrubbed(refusal or f"HTTP {response.status}: {text[:200]}")
                    if refusal or (response.status != 429 and response.status < 500):
                        raise self._give_up(what, to, attempt, problem, key,
                                            f"{what} was refused ({problem})")
                    retry_after = _retry_after(response, decoded)
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if retry_after is not None and retry_after > policy.max_retry_after_s:
                problem += f"; asked to wait {retry_after:.0f} s"
                raise self._give_up(what, to, attempt, problem, key,
                                    f"{what} was put off for too long ({problem})")
            if attempt < policy.attempts:
                wait = policy.delay(attempt, retry_after)
                log.warning("%s%s failed (attempt %d of %d, %s); retrying in %.2f s "
                            "[delivery %s]", what, _to(to), attempt, policy.attempts,
                            problem, wait, key)
                await asyncio.sleep(wait)
        raise self._give_up(what, to, policy.attempts, problem, key,
                            f"{what} failed after {policy.attempts} attempts ({problem})")


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
