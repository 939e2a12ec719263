"""The Redis session store and its fair distributed lock, against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.errors import SessionError
from bot.sessions.redis_store import RedisSessionStore, display_url
from tests.local_redis import LocalRedis, free_port

from .production_support import redis_server

__all__ = ["redis_server"]


def make_store(url: str, *, ttl: float = 60.0, lease: float = 5.0) -> RedisSessionStore:
    return RedisSessionStore(url, prefix="test", ttl_seconds=ttl, lease_seconds=lease).open()


async def next_ticket(store: RedisSessionStore, key: str) -> int:
    return int(await store.client.hget(f"test:{{{key}}}:lock", "next") or 0)


async def wait_for_ticket(store: RedisSessionStore, key: str, ticket: int) -> None:
    """Until ``ticket`` was handed out, i.e. that turn has arrived at Redis."""
    async with asyncio.timeout(10):
        while await next_ticket(store, key) < ticket:
            await asyncio.sleep(0.002)


async def test_session_round_trip_events_and_expiry(redis_server: LocalRedis) -> None:
    store = make_store(redis_server.url, ttl=0.3)
    other = make_store(redis_server.url)
    try:
        session = await store.get("rest:u1", channel="rest", sender="u1")
        session.add("user", "hello", max_history=5)
        session.slots["card"] = "visa"
        await store.save(session)
        again = await other.get("rest:u1", channel="rest", sender="u1")
        assert again.history[0]["text"] == "hello" and again.slots == {"card": "visa"}
        await store.log_event("rest:u2", "feedback", {"rating": "up"})
        await asyncio.sleep(0.35)
        fresh = await store.get("rest:u1", channel="rest", sender="u1")
        assert fresh.history == []
        kinds = [(e["key"], e["kind"]) async for e in other.iter_events()]
        assert kinds == [("rest:u2", "feedback"), ("rest:u1", "session_expired")]
        only = [e["kind"] async for e in other.iter_events(key="rest:u2")]
        assert only == ["feedback"]
        assert [e async for e in other.iter_events(since=time.time() + 60)] == []
    finally:
        await store.close()
        await other.close()


async def test_turns_run_in_arrival_order_across_workers(redis_server: LocalRedis) -> None:
    workers = [make_store(redis_server.url), make_store(redis_server.url)]
    blocker = make_store(redis_server.url)
    order: list[int] = []

    async def turn(store: RedisSessionStore, n: int) -> None:
        async with store.lock("rest:u"):
            session = await store.get("rest:u", channel="rest", sender="u")
            session.add("user", str(n), max_history=50)
            await asyncio.sleep(0.005)
            order.append(n)
            await store.save(session)

    try:
        async with blocker.lock("rest:u"):  # everything below queues behind this holder
            tasks = []
            for n in range(12):
                tasks.append(asyncio.create_task(turn(workers[n % 2], n)))
                await wait_for_ticket(blocker, "rest:u", n + 2)
        await asyncio.gather(*tasks)
        assert order == list(range(12))
        session = await blocker.get("rest:u", channel="rest", sender="u")
        assert [t["text"] for t in session.history] == [str(n) for n in range(12)]
    finally:
        for store in [*workers, blocker]:
            await store.close()


async def hold_and_die(store: RedisSessionStore, key: str) -> Any:
    """Take the lock and stop renewing it, as a worker killed mid-turn would.

    Returns the entered context: keep it referenced, or garbage collection releases the lock.
    """
    context = store.lock(key)
    await context.__aenter__()
    renewer = store._held[key].renewer
    assert renewer is not None
    renewer.cancel()
    return context


async def test_lease_of_a_dead_holder_lapses_and_its_late_save_is_refused(
        redis_server: LocalRedis) -> None:
    dead, alive = make_store(redis_server.url, lease=0.3), make_store(redis_server.url, lease=0.3)
    try:
        frozen = await hold_and_die(dead, "rest:u")
        stale = await dead.get("rest:u", channel="rest", sender="u")
        started = time.monotonic()
        async with alive.lock("rest:u"):
            waited = time.monotonic() - started
            session = await alive.get("rest:u", channel="rest", sender="u")
            session.add("user", "after failover", max_history=5)
            await alive.save(session)
        assert 0.2 < waited < 3
        stale.add("user", "from the dead worker", max_history=5)
        with pytest.raises(SessionError, match="lost the lock"):
            await dead.save(stale)
        kept = await alive.get("rest:u", channel="rest", sender="u")
        assert [t["text"] for t in kept.history] == ["after failover"]
        assert frozen is not None
    finally:
        await dead.close()
        await alive.close()


async def test_a_waiter_that_gives_up_does_not_stall_the_queue(
        redis_server: LocalRedis) -> None:
    store = make_store(redis_server.url, lease=30)
    try:
        async with store.lock("rest:u"):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1), store.lock("rest:u"):
                    pass
        started = time.monotonic()
        async with asyncio.timeout(2), store.lock("rest:u"):
            pass
        assert time.monotonic() - started < 1  # not the 30 s lease of the abandoned ticket
    finally:
        await store.close()


async def test_data_survives_a_redis_restart(redis_server: LocalRedis) -> None:
    store = make_store(redis_server.url)
    try:
        async with store.lock("rest:u"):
            session = await store.get("rest:u", channel="rest", sender="u")
            session.add("user", "before restart", max_history=5)
            await store.save(session)
        redis_server.restart()
        async with store.lock("rest:u"):  # the client reconnects by itself
            session = await store.get("rest:u", channel="rest", sender="u")
            session.add("user", "after restart", max_history=5)
            await store.save(session)
        assert [t["text"] for t in session.history] == ["before restart", "after restart"]
    finally:
        await store.close()


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    url = f"redis://:hunter22@127.0.0.1:{free_port()}/0"
    with pytest.raises(SessionError, match="cannot reach the Redis session store") as info:
        RedisSessionStore(url, prefix="x", ttl_seconds=60).open()
    assert "hunter22" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert display_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert display_url("rediss://app:pw@host:6380/1") == "rediss://app:***@host:6380/1"


async def test_sessions_where_finds_live_handed_off_sessions(redis_server: LocalRedis) -> None:
    store = make_store(redis_server.url, ttl=60)
    try:
        for sender, status in (("a", "waiting"), ("b", "active"), ("c", None), ("d", "waiting")):
            session = await store.get(f"rest:{sender}", channel="rest", sender=sender)
            if status is not None:
                session.state["handoff"] = {"status": status}
            await store.save(session)
            await asyncio.sleep(0.01)  # distinct update times: the order is checked
        await store.client.set("test:{rest:bad}:session", b"\xff not json")
        waiting = await store.sessions_where("handoff.status", ["waiting"])
        assert [s.key for s in waiting] == ["rest:a", "rest:d"]
        both = await store.sessions_where("handoff.status", ["waiting", "active"])
        assert [s.key for s in both] == ["rest:a", "rest:b", "rest:d"]
        with pytest.raises(ValueError, match="bad state path"):
            await store.sessions_where("handoff..status", ["waiting"])
    finally:
        await store.close()
