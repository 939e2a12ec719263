"""Sessions in Redis, so several ``bot serve`` processes can serve one bot.

Keys, under ``prefix`` (``supportbot:<bot name>`` unless configured); ``{key}`` is a hash
tag, so a session's keys share one Redis Cluster slot:

- ``<prefix>:{<key>}:session``: the :class:`Session` as JSON, kept ``ttl + RETENTION_S``.
- ``<prefix>:{<key>}:lock``: a hash with the session's FIFO ticket lock (below).
- ``<prefix>:events``: a stream of every event (``key``, ``kind``, ``ts``, ``data`` JSON).

The lock is a fair ticket lock run by Lua scripts: a turn takes the next ticket (``HINCRBY``)
when it arrives and waits until ``serving`` reaches it, so turns of one user run in the order
Redis saw them arrive, whichever worker took them. The holder's lease (``owner`` token +
``deadline`` from Redis' clock) is renewed while the turn runs; when a worker dies its lease
lapses and the next ticket proceeds. A waiter that gives up (turn timeout) marks its ticket
``gone`` so nobody waits for it. Saves are fenced: they only land while the token still owns
the lock, so a worker whose lease lapsed cannot overwrite a newer turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import SessionError, StoreUnavailable
from bot.sessions.events import SESSION_EXPIRED_EVENT
from bot.sessions.store import Session, check_state_path, state_value

T = TypeVar("T")
RETENTION_S = 7 * 24 * 3600
EVENTS_MAXLEN = 1_000_000
_POLL_MAX_S = 0.02
CALL_TIMEOUT_S = 4.0  # one store call: a frozen Redis gives 503 as a stopped one does

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function advance(key, serving, now, grace)
  serving = serving + 1
  while redis.call('HDEL', key, 'gone:' .. serving) == 1 do serving = serving + 1 end
  redis.call('HSET', key, 'serving', serving, 'owner', '', 'deadline', now + grace)
  return serving
end
"""
# ARGV: token, lease_ms, grace_ms, idle_ms -> {ticket, 1 if acquired at once else 0}
_ENTER = _PRELUDE + """
local key, token = KEYS[1], ARGV[1]
local now = now_ms()
local ticket = tonumber(redis.call('HGET', key, 't:' .. token))
if not ticket then
  ticket = redis.call('HINCRBY', key, 'next', 1)
  redis.call('HSET', key, 't:' .. token, ticket)
  if not redis.call('HGET', key, 'serving') then
    redis.call('HSET', key, 'serving', ticket, 'owner', '', 'deadline', now + ARGV[3])
  end
end
redis.call('PEXPIRE', key, ARGV[4])
local st = redis.call('HMGET', key, 'serving', 'owner')
if tonumber(st[1]) == ticket and (st[2] == '' or st[2] == token) then
  redis.call('HSET', key, 'owner', token, 'deadline', now + tonumber(ARGV[2]))
  redis.call('HDEL', key, 't:' .. token)
  return {ticket, 1}
end
return {ticket, 0}
"""
# ARGV: ticket, token, lease_ms, grace_ms, idle_ms -> 1 acquired, 0 wait, -1 skipped
_TRY = _PRELUDE + """
local key, ticket, token = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local now = now_ms()
local st = redis.call('HMGET', key, 'serving', 'owner', 'deadline')
local serving, owner, deadline = tonumber(st[1]), st[2] or '', tonumber(st[3]) or 0
if not serving then
  serving, owner, deadline = ticket, '', now + tonumber(ARGV[4])
  redis.call('HSET', key, 'serving', serving, 'owner', owner, 'deadline', deadline)
  if (tonumber(redis.call('HGET', key, 'next')) or 0) < ticket then
    redis.call('HSET', key, 'next', ticket)
  end
end
if ticket > serving and deadline < now then
  serving, owner = advance(key, serving, now, tonumber(ARGV[4])), ''
end
redis.call('PEXPIRE', key, ARGV[5])
if ticket < serving then
  redis.call('HDEL', key, 't:' .. token)
  return -1
end
if ticket == serving and (owner == '' or owner == token) then
  redis.call('HSET', key, 'owner', token, 'deadline', now + tonumber(ARGV[3]))
  redis.call('HDEL', key, 't:' .. token)
  return 1
end
return 0
"""
# ARGV: token, lease_ms, idle_ms -> 1 renewed, 0 lost
_RENEW = _PRELUDE + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'deadline', now_ms() + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# ARGV: token, grace_ms, ticket ('' when held) -> 1 released
_LEAVE = _PRELUDE + """
local key, token, ticket = KEYS[1], ARGV[1], tonumber(ARGV[3])
redis.call('HDEL', key, 't:' .. token)
local st = redis.call('HMGET', key, 'serving', 'owner')
local serving = tonumber(st[1])
if not serving then return 0 end
if st[2] == token or (ticket == serving and st[2] == '') then
  advance(key, serving, now_ms(), tonumber(ARGV[2]))
  return 1
end
if ticket and ticket > serving then redis.call('HSET', key, 'gone:' .. ticket, 1) end
return 0
"""
# KEYS: lock, session; ARGV: token ('' = unfenced), json, px -> 1 saved, 0 lock lost
_SAVE = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""


def display_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _Held:
    """A lock this process holds: its token and the task renewing its lease."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.lost = False
        self.renewer: asyncio.Task[None] | None = None


class RedisSessionStore:
    """A :class:`~bot.sessions.SessionStore` shared by every worker of a bot."""

    def __init__(self, url: str, *, prefix: str, ttl_seconds: float,
                 lease_seconds: float = 10.0) -> None:
        self.url = url
        self.shown = display_url(url)
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.lease_ms = max(100, int(lease_seconds * 1000))
        self.idle_ms = max(60_000, 6 * self.lease_ms)
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            retry_on_error=[RedisConnectionError, RedisTimeoutError])
        self._probe: aioredis.Redis = aioredis.Redis.from_url(  # for health: fail fast
            url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(ExponentialBackoff(),
                                                                        retries=0))
        self._held: dict[str, _Held] = {}
        self._scripts = {name: self.client.register_script(text) for name, text in
                         (("enter", _ENTER), ("try", _TRY), ("renew", _RENEW),
                          ("leave", _LEAVE), ("save", _SAVE))}

    def open(self) -> RedisSessionStore:
        """Check that Redis answers (blocking), so a bad URL fails at startup."""
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=2,
                                      socket_timeout=5) as probe:
                probe.ping()
        except (RedisError, OSError, ValueError) as exc:
            raise SessionError(f"{self.shown}: cannot reach the Redis session store: {exc}") \
                from exc
        return self

    def _key(self, key: str, kind: str) -> str:
        return f"{self.prefix}:{{{key}}}:{kind}"

    async def _call(self, what: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):  # a frozen Redis answers nothing
                return await what()
        except TimeoutError as exc:
            raise StoreUnavailable(f"{self.shown}: the Redis session store did not answer "
                                   f"within {CALL_TIMEOUT_S:g} s") from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"{self.shown}: the Redis session store is unreachable: "
                                   f"{exc}") from exc
        except RedisError as exc:
            raise SessionError(f"{self.shown}: Redis session store error: {exc}") from exc

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._call(lambda: self._scripts[name](keys=keys, args=args))

    async def _enter(self, lock_key: str, token: str) -> tuple[int, int]:
        ticket, got = await self._script("enter", [lock_key],
                                         [token, self.lease_ms, self.lease_ms, self.idle_ms])
        return int(ticket), int(got)

    @asynccontextmanager
    async def _hold(self, key: str) -> AsyncIterator[None]:
        lock_key, token = self._key(key, "lock"), uuid.uuid4().hex
        ticket, got = await self._enter(lock_key, token)
        delay = 0.001
        try:
            while got != 1:
                await asyncio.sleep(delay)
                delay = min(2 * delay, _POLL_MAX_S)
                got = int(await self._script("try", [lock_key], [
                    ticket, token, self.lease_ms, self.lease_ms, self.idle_ms]))
                if got == -1:  # presumed dead and skipped: queue again
                    ticket, got = await self._enter(lock_key, token)
        except BaseException:  # cancelled (turn timeout) or Redis failed: give the ticket up
            await self._leave_quietly(lock_key, token, str(ticket))
            raise
        held = self._held[key] = _Held(token)
        held.renewer = asyncio.create_task(self._renew(lock_key, held))
        try:
            yield
        finally:
            held.renewer.cancel()
            del self._held[key]
            await self._leave_quietly(lock_key, token, "")

    async def _leave_quietly(self, lock_key: str, token: str, ticket: str) -> None:
        with contextlib.suppress(RedisError, TimeoutError):  # Redis away: the lease lapses
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await asyncio.shield(self._scripts["leave"](
                    keys=[lock_key], args=[token, self.lease_ms, ticket]))

    async def _renew(self, lock_key: str, held: _Held) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                renewed = await self._scripts["renew"](
                    keys=[lock_key], args=[held.token, self.lease_ms, self.idle_ms])
            except RedisError:
                continue  # retried next period; the fenced save catches a lapsed lease
            if not renewed:
                held.lost = True
                return

    def lock(self, key: str) -> Any:
        return self._hold(key)

    async def get(self, key: str, *, channel: str, sender: str) -> Session:
        raw = await self._call(lambda: self.client.get(self._key(key, "session")))
        now = time.time()
        if raw is not None:
            try:
                session = Session.from_json(_text(raw))
            except (ValueError, TypeError) as exc:
                raise SessionError(f"{self.shown}: session {key!r} is unreadable: {exc}") \
                    from exc
            if now - session.updated_at <= self.ttl_seconds:
                return session
            await self.log_event(key, SESSION_EXPIRED_EVENT, {"started_at": session.started_at})
        return Session(key=key, channel=channel, sender=sender, started_at=now, updated_at=now)

    async def save(self, session: Session) -> None:
        session.updated_at = time.time()
        held = self._held.get(session.key)
        token = held.token if held is not None else ""
        px = int((self.ttl_seconds + RETENTION_S) * 1000)
        saved = await self._script(
            "save", [self._key(session.key, "lock"), self._key(session.key, "session")],
            [token, session.to_json(), px])
        if not saved:
            raise SessionError(f"{self.shown}: lost the lock on session {session.key!r} "
                               "(lease expired); this turn was not saved")

    async def log_event(self, key: str, kind: str, data: dict[str, Any]) -> None:
        fields: dict[Any, Any] = {"key": key, "kind": kind, "ts": repr(time.time()),
                                  "data": json.dumps(data, ensure_ascii=False)}
        await self._call(lambda: self.client.xadd(f"{self.prefix}:events", fields,
                                                  maxlen=EVENTS_MAXLEN, approximate=True))

    async def iter_events(self, *, key: str | None = None,
                          since: float = 0.0) -> AsyncIterator[dict[str, Any]]:
        start = f"{int(since * 1000)}-0"
        stream = f"{self.prefix}:events"
        while True:
            page: Any = await self._call(partial(self.client.xrange, stream, start, "+",
                                                 count=500))
            for entry_id, raw in page:
                fields = {_text(k): _text(v) for k, v in raw.items()}
                ts = float(fields["ts"])
                if (key is None or fields["key"] == key) and ts >= since:
                    yield {"key": fields["key"], "ts": ts, "kind": fields["kind"],
                           "data": json.loads(fields["data"])}
                start = "(" + _text(entry_id)
            if len(page) < 500:
                return

    async def sessions_where(self, path: str, values: Sequence[str]) -> list[Session]:
        """Live sessions whose ``state`` holds one of ``values`` at the dotted ``path``, least
        recently updated first. Scans every session: for an agent's listing, not a hot path."""
        check_state_path(path, values)
        wanted, cutoff = set(values), time.time() - self.ttl_seconds
        pattern = f"{_glob_escape(self.prefix)}:{{*}}:session"

        async def scan() -> list[Any]:
            return [k async for k in self.client.scan_iter(match=pattern, count=500)]

        keys = await self._call(scan)
        found: list[Session] = []
        for start in range(0, len(keys), 200):
            chunk = keys[start:start + 200]
            raws: list[Any] = await self._call(partial(self.client.mget, chunk))
            for raw in raws:
                try:
                    session = Session.from_json(_text(raw)) if raw is not None else None
                except (ValueError, TypeError):
                    continue  # unreadable: `get` names it when that user writes again
                if session is not None and session.updated_at >= cutoff \
                        and state_value(session.state, path) in wanted:
                    found.append(session)
        return sorted(found, key=lambda s: s.updated_at)

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless Redis answers now (one try, no retries)."""
        try:
            await self._probe.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.shown}: the Redis session store is unreachable: "
                                   f"{exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()
        await self._probe.aclose()
