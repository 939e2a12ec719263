"""Conversation sessions and their storage (SQLite by default: a real file in WAL mode).

A session is keyed by ``channel:sender``. The store serialises turns of one session with a
per-key lock, and a session idle for longer than its TTL starts afresh (the old turns stay
in the events table).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.errors import SessionError
from bot.sessions.events import SESSION_EXPIRED_EVENT


@dataclass
class Session:
    """The state of one conversation."""

    key: str
    channel: str
    sender: str
    started_at: float
    updated_at: float
    history: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def add(self, role: str, text: str, *, max_history: int, **extra: Any) -> None:
        """Append one utterance, keeping at most ``max_history`` turns."""
        self.history.append({"role": role, "text": text, "ts": time.time(), **extra})
        del self.history[: max(0, len(self.history) - 2 * max_history)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Session:
        return cls(**json.loads(text))


class SessionStore(Protocol):
    """Where sessions live between turns."""

    async def get(self, key: str, *, channel: str, sender: str) -> Session: ...

    async def save(self, session: Session) -> None: ...

    async def log_event(self, key: str, kind: str, data: dict[str, Any]) -> None: ...

    def lock(self, key: str) -> Any:
        """An async context manager that serialises turns of one session."""
        ...

    def iter_events(self, *, key: str | None = None,
                    since: float = 0.0) -> AsyncIterator[dict[str, Any]]:
        """Events oldest first as ``{key, ts, kind, data}`` (one session's when ``key``)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~bot.errors.SessionError` unless the store answers now."""
        ...

    async def close(self) -> None: ...


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


Scalar = str | float | int | bool | None
_STATE_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def check_state_path(path: str, values: Sequence[str]) -> None:
    """Refuse a malformed dotted ``state`` path or an empty list of values."""
    if not _STATE_PATH.fullmatch(path) or not values:
        raise ValueError(f"bad state path {path!r} or no values")


def state_value(state: dict[str, Any], path: str) -> Any:
    """The value at the dotted ``path`` in ``state`` (None where it is missing)."""
    value: Any = state
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_key ON events(key, id);
"""


class SQLiteSessionStore:
    """A :class:`SessionStore` in one SQLite file; blocking calls run in a worker thread."""

    def __init__(self, path: Path, *, ttl_seconds: float) -> None:
        self.path = path
        self.ttl_seconds = ttl_seconds
        self._locks = KeyedLocks()
        self._db_lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> SQLiteSessionStore:
        """Open (and create) the database file."""
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                raise SessionError(f"{self.path}: cannot open session database: {exc}") from exc
            self._db = db
        return self

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self._db is None:
            self.open()
        assert self._db is not None
        with self._db_lock:
            try:
                with self._db:
                    return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise SessionError(f"{self.path}: session database error: {exc}") from exc

    def lock(self, key: str) -> Any:
        return self._locks.hold(key)

    def get_sync(self, key: str, *, channel: str, sender: str) -> Session:
        rows = self._run("SELECT data FROM sessions WHERE key = ?", (key,))
        now = time.time()
        if rows:
            try:
                session = Session.from_json(rows[0][0])
            except (ValueError, TypeError) as exc:
                raise SessionError(f"{self.path}: session {key!r} is unreadable: {exc}") from exc
            if now - session.updated_at <= self.ttl_seconds:
                return session
            self.log_event_sync(key, SESSION_EXPIRED_EVENT, {"started_at": session.started_at})
        return Session(key=key, channel=channel, sender=sender, started_at=now, updated_at=now)

    def save_sync(self, session: Session) -> None:
        session.updated_at = time.time()
        self._run(
            "INSERT INTO sessions (key, channel, sender, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at",
            (session.key, session.channel, session.sender, session.to_json(), session.updated_at),
        )

    def log_event_sync(self, key: str, kind: str, data: dict[str, Any]) -> None:
        self._run("INSERT INTO events (key, ts, kind, data) VALUES (?, ?, ?, ?)",
                  (key, time.time(), kind, json.dumps(data, ensure_ascii=False)))

    def events(self, key: str) -> list[dict[str, Any]]:
        """All events of one session, oldest first."""
        rows = self._run("SELECT ts, kind, data FROM events WHERE key = ? ORDER BY id", (key,))
        return [{"ts": ts, "kind": kind, "data": json.loads(data)} for ts, kind, data in rows]

    async def iter_events(self, *, key: str | None = None,
                          since: float = 0.0) -> AsyncIterator[dict[str, Any]]:
        last = 0
        where = "id > ? AND ts >= ?" + (" AND key = ?" if key is not None else "")
        while True:
            params = (last, since) + ((key,) if key is not None else ())
            rows = await asyncio.to_thread(
                self._run, f"SELECT id, key, ts, kind, data FROM events WHERE {where}"
                " ORDER BY id LIMIT 500", params)
            for row_id, row_key, ts, kind, data in rows:
                last = row_id
                yield {"key": row_key, "ts": ts, "kind": kind, "data": json.loads(data)}
            if len(rows) < 500:
                return

    def sessions_where_sync(self, path: str, values: Sequence[str]) -> list[Session]:
        """Live sessions (within the TTL) whose ``state`` holds one of ``values`` at ``path``
        (a dotted path such as ``"handoff.status"``), least recently updated first."""
        check_state_path(path, values)
        marks = ", ".join("?" for _ in values)
        rows = self._run(
            f"SELECT data FROM sessions WHERE json_extract(data, ?) IN ({marks})"
            " AND updated_at >= ? ORDER BY updated_at",
            (f"$.state.{path}", *values, time.time() - self.ttl_seconds))
        return [Session.from_json(data) for (data,) in rows]

    async def sessions_where(self, path: str, values: Sequence[str]) -> list[Session]:
        return await asyncio.to_thread(self.sessions_where_sync, path, values)

    def set_state_if_sync(self, key: str, expected: Mapping[str, Scalar],
                          changes: Mapping[str, Scalar]) -> bool:
        """Set ``changes`` (dotted ``state`` paths -> values) in the live session ``key`` only
        while each path of ``expected`` holds its value (None: unset), in one statement: a
        compare-and-set that holds across processes sharing the file. True when it did."""
        for path in (*expected, *changes):
            check_state_path(path, ["-"])
        now = time.time()
        sets = ", ".join("?, ?" for _ in changes)
        tests = "".join(" AND json_extract(data, ?) IS ?" for _ in expected)
        rows = self._run(
            f"UPDATE sessions SET data = json_set(data, '$.updated_at', ?, {sets}),"
            f" updated_at = ? WHERE key = ? AND updated_at >= ?{tests} RETURNING key",
            (now, *(x for path, value in changes.items() for x in (f"$.state.{path}", value)),
             now, key, now - self.ttl_seconds,
             *(x for path, value in expected.items() for x in (f"$.state.{path}", value))))
        return bool(rows)

    async def set_state_if(self, key: str, expected: Mapping[str, Scalar],
                           changes: Mapping[str, Scalar]) -> bool:
        return await asyncio.to_thread(self.set_state_if_sync, key, expected, changes)

    async def get(self, key: str, *, channel: str, sender: str) -> Session:
        return await asyncio.to_thread(self.get_sync, key, channel=channel, sender=sender)

    async def save(self, session: Session) -> None:
        await asyncio.to_thread(self.save_sync, session)

    async def log_event(self, key: str, kind: str, data: dict[str, Any]) -> None:
        await asyncio.to_thread(self.log_event_sync, key, kind, data)

    async def ping(self) -> None:
        await asyncio.to_thread(self._run, "SELECT 1")

    async def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
