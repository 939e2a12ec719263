from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.errors import SessionError
from bot.sessions.store import KeyedLocks, SQLiteSessionStore


async def test_session_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteSessionStore(path, ttl_seconds=60).open()
    session = await store.get("rest:u1", channel="rest", sender="u1")
    session.add("user", "hello", max_history=5)
    session.slots["card"] = "1234"
    await store.save(session)
    await store.close()

    reopened = SQLiteSessionStore(path, ttl_seconds=60).open()
    again = await reopened.get("rest:u1", channel="rest", sender="u1")
    assert again.history[0]["text"] == "hello" and again.slots == {"card": "1234"}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await reopened.close()


async def test_expired_session_starts_fresh_and_logs_it(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.sqlite3", ttl_seconds=0.05).open()
    session = await store.get("k", channel="rest", sender="u")
    session.add("user", "old", max_history=5)
    await store.save(session)
    time.sleep(0.1)
    fresh = await store.get("k", channel="rest", sender="u")
    assert fresh.history == []
    assert [e["kind"] for e in store.events("k")] == ["session_expired"]


def test_history_is_capped() -> None:
    from bot.sessions.store import Session

    session = Session("k", "rest", "u", 0.0, 0.0)
    for i in range(10):
        session.add("user", str(i), max_history=2)
    assert [t["text"] for t in session.history] == ["6", "7", "8", "9"]


async def test_keyed_lock_serialises_one_key_and_cleans_up() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def turn(key: str, name: str, delay: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}-start")
            await asyncio.sleep(delay)
            order.append(f"{name}-end")

    await asyncio.gather(turn("a", "first", 0.05), turn("a", "second", 0), turn("b", "other", 0))
    assert order.index("first-end") < order.index("second-start")
    assert order.index("other-start") < order.index("first-end")  # other keys don't wait
    assert len(locks) == 0


async def test_unreadable_database_is_a_session_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SessionError, match=r"s\.sqlite3"):
        SQLiteSessionStore(path, ttl_seconds=60).open()
