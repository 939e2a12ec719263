"""Per-provider send rates: token buckets that make a channel's deliveries wait their turn.

Every provider caps how fast a bot may send, overall and to one conversation (a Telegram
chat, a Slack channel, a WhatsApp user, a Teams conversation, a Twilio sending number).
A channel's :class:`Pacer` holds one bucket for all its sends and one per *lane* (that
conversation, or number); a send that finds a bucket empty waits for its turn, in order of
arrival, and is never dropped. Each connector names its provider's documented limits as
a :class:`RateLimit`; the channel's ``rate_limit`` settings override them field by field.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foundation.checks import between, check

MAX_LANES = 10_000  # lane buckets kept (least recently used forgotten first)


def not_negative(value: Any) -> str | None:
    """Config check: a rate of 0 or more (0 turns that limit off)."""
    return None if value >= 0 else "must be 0 (no limit) or more"


@dataclass(frozen=True)
class RateLimit:
    """How fast a channel may send: ``rate_per_s`` messages a second overall with bursts of
    ``burst``, and ``each_rate_per_s`` (bursts of ``each_burst``) in one lane. A field left
    unset (None) takes the provider's default (:meth:`over`); a rate of 0 means no limit."""

    rate_per_s: float | None = check(not_negative, default=None)
    burst: int | None = check(between(1, 100_000), default=None)
    each_rate_per_s: float | None = check(not_negative, default=None)
    each_burst: int | None = check(between(1, 100_000), default=None)

    def over(self, defaults: RateLimit) -> RateLimit:
        """These settings, each unset field taken from ``defaults``."""
        return RateLimit(**{f.name: getattr(defaults, f.name) if getattr(self, f.name) is None
                            else getattr(self, f.name) for f in dataclasses.fields(self)})


NO_LIMIT = RateLimit()


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; a send takes one. Tokens may go
    below zero: each taker reserves the next free slot and waits until it comes."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Take a token; the seconds until it is there (0 when one was available)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled (forgetting it then changes nothing)."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


def _bucket(rate: float | None, burst: int | None, now: float) -> TokenBucket | None:
    if not rate:
        return None
    return TokenBucket(rate, burst or max(1, math.ceil(rate)), now)


class Pacer:
    """The buckets of one channel's deliveries (see the module docstring)."""

    def __init__(self, limit: RateLimit,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.overall = _bucket(limit.rate_per_s, limit.burst, clock())
        self.lanes: OrderedDict[str, TokenBucket] = OrderedDict()

    def _lane(self, lane: str, now: float) -> TokenBucket | None:
        bucket = self.lanes.pop(lane, None) or _bucket(
            self.limit.each_rate_per_s, self.limit.each_burst, now)
        if bucket is None:
            return None
        self.lanes[lane] = bucket
        while len(self.lanes) > MAX_LANES:
            oldest = next(iter(self.lanes))
            if not self.lanes[oldest].full(now) and len(self.lanes) <= 2 * MAX_LANES:
                break  # keep buckets that still hold back a recent burst
            self.lanes.pop(oldest)
        return bucket

    async def wait(self, lane: str | None = None) -> float:
        """Wait until one more message may go out (to ``lane``); the seconds waited. The
        lane's turn comes first, then the overall one, so a message held back in its lane
        does not take an overall slot it cannot use."""
        waited = 0.0
        if lane is not None:
            waited += await self._take(self._lane(lane, self.clock()))
        return waited + await self._take(self.overall)

    async def _take(self, bucket: TokenBucket | None) -> float:
        delay = bucket.take(self.clock()) if bucket is not None else 0.0
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
