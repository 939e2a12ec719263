"""API tokens and rate limits for the HTTP server.

Tokens: ``security.api_tokens`` in ``bot.yaml`` (write them as ``${ENV}`` references).
Protect a route with :func:`require_token` (a handler decorator) or every route under some
prefixes with :func:`token_middleware`. A request passes with ``Authorization: Bearer <token>``
or ``X-Api-Token: <token>``; otherwise it gets 401 (403 when no tokens are configured, so an
admin API is never open by accident)::

    from bot.server.security import require_token

    @require_token
    async def list_conversations(request: web.Request) -> web.Response: ...

Rate limits are token buckets per sender (``security.sender_rate_limit``, checked for every
turn) and per client IP (``security.ip_rate_limit``, checked by :func:`security_middleware`);
over the limit a request gets ``429`` with ``Retry-After``. With the Redis session store the
buckets live in Redis, so limits hold across workers; otherwise they are in memory.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol

from aiohttp import web

from bot.definition.config import BotConfig, RateLimit, SecuritySettings
from bot.errors import ChannelError
from bot.sessions.factory import redis_prefix
from channels.http import check_token

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXEMPT_PATHS = frozenset({"/health", "/metrics"})
MEMORY_BUCKETS = 100_000


class RateLimited(ChannelError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Buckets(Protocol):
    """Token buckets by key: ``take`` returns 0 when allowed, else seconds to wait."""

    async def take(self, key: str, limit: RateLimit) -> float: ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process (the least recently used are forgotten past a bound)."""

    def __init__(self, max_keys: int = MEMORY_BUCKETS) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, limit: RateLimit) -> float:
        rate, now = limit.per_minute / 60, time.monotonic()
        tokens, last = self._buckets.pop(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        self._buckets.clear()


_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]) / 60000, tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, last = tonumber(st[1]) or burst, tonumber(st[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
"""


class RedisBuckets:
    """Buckets in Redis, shared by every worker; if Redis is away, requests pass."""

    def __init__(self, url: str, *, prefix: str) -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self.failing = False
        self.client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self.client.register_script(_BUCKET_LUA)

    async def take(self, key: str, limit: RateLimit) -> float:
        from redis.exceptions import RedisError

        try:
            wait_ms = await self._script(keys=[f"{self.prefix}:rate:{{{key}}}"],
                                         args=[limit.per_minute, limit.burst])
        except RedisError as exc:
            if not self.failing:  # one line per outage, not one per request
                log.warning("rate limits not checked while Redis is unavailable: %s", exc)
            self.failing = True
            return 0.0
        if self.failing:
            log.warning("rate limits checked again: Redis is back")
        self.failing = False
        return int(wait_ms) / 1000

    async def close(self) -> None:
        await self.client.aclose()


class RateLimiter:
    """Per-sender and per-IP limits of one bot."""

    def __init__(self, settings: SecuritySettings, buckets: Buckets, *,
                 on_limited: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.buckets = buckets
        self.on_limited = on_limited  # called with the scope of each request it refuses

    @classmethod
    def for_config(cls, config: BotConfig, *,
                   on_limited: Callable[[str], None] | None = None) -> RateLimiter:
        """Redis buckets when the sessions are in Redis, else in-memory ones."""
        sessions = config.sessions
        buckets: Buckets = MemoryBuckets()
        if sessions.store == "redis":
            buckets = RedisBuckets(sessions.redis_url, prefix=redis_prefix(config))
        return cls(config.security, buckets, on_limited=on_limited)

    async def check(self, scope: str, ident: str) -> None:
        """Raise :class:`RateLimited` when ``ident`` is over the ``scope`` limit."""
        limit = {"sender": self.settings.sender_rate_limit,
                 "ip": self.settings.ip_rate_limit}[scope]
        if limit is None:
            return
        wait = await self.buckets.take(f"{scope}:{ident}", limit)
        if wait > 0:
            if self.on_limited is not None:
                self.on_limited(scope)
            raise RateLimited(f"too many requests; retry in {math.ceil(wait)} s",
                              retry_after=wait)

    async def close(self) -> None:
        await self.buckets.close()


SECURITY: web.AppKey[SecuritySettings] = web.AppKey("security", SecuritySettings)
LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)


def install_security(app: web.Application, config: BotConfig, *,
                     on_limited: Callable[[str], None] | None = None) -> None:
    """Store the settings and open the rate limiter for the app's lifetime (``on_limited``:
    called with the scope, ``sender`` or ``ip``, of every refused request)."""
    app[SECURITY] = config.security

    async def limiter(app: web.Application) -> AsyncIterator[None]:
        app[LIMITER] = RateLimiter.for_config(config, on_limited=on_limited)
        yield
        await app[LIMITER].close()

    app.cleanup_ctx.append(limiter)


def client_ip(request: web.Request, trusted_proxies: Iterable[str] = ()) -> str:
    """The client's address; ``X-Forwarded-For`` counts only from a trusted proxy."""
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    address = request.remote or "unknown"
    if networks and trusted(address):
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            address = hop
            if not trusted(hop):
                break
    return address


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The per-IP limit for every request but health and metrics; 429 for any limit hit."""
    try:
        limiter = request.config_dict.get(LIMITER)
        if limiter is not None and request.path not in EXEMPT_PATHS:
            await limiter.check("ip", client_ip(request, limiter.settings.trusted_proxies))
        return await handler(request)
    except RateLimited as exc:
        return web.json_response({"error": str(exc)}, status=429,
                                 headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))})


def _configured_tokens(request: web.Request) -> tuple[str, ...]:
    settings = request.config_dict.get(SECURITY)
    return settings.api_tokens if settings is not None else ()


def require_token(handler: Handler) -> Handler:
    """Decorate a route handler so it needs one of ``security.api_tokens``."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        check_token(request, _configured_tokens(request))
        return await handler(request)

    return guarded


def token_middleware(prefixes: Iterable[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware requiring an API token for every path under ``prefixes``."""
    wanted = tuple(p.rstrip("/") for p in prefixes)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(request.path == p or request.path.startswith(p + "/") for p in wanted):
            check_token(request, _configured_tokens(request))
        return await handler(request)

    return middleware

