"""Helpers for channel tests: a recording stand-in for platform APIs, store inspection."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.server.app import RUNTIME
from bot.sessions.store import Session

Serve = Callable[..., Awaitable[TestClient]]


@dataclass
class Recorded:
    """One request the stand-in received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


async def serve_locally(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1 at a free port: its runner (to clean up) and its address."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def wait_until_counted(items: list[Any], count: int, arrived: asyncio.Event,
                             timeout: float) -> None:
    """Wait until ``items`` holds ``count`` (``arrived`` is set as each comes)."""
    async with asyncio.timeout(timeout):
        while len(items) < count:
            arrived.clear()
            await arrived.wait()


class StandIn:
    """A local aiohttp server on 127.0.0.1 that records every POST.

    ``script`` lists the statuses and JSON bodies (and, as a third item, response headers)
    to answer in order; after it runs out, ``default`` answers. ``arrived_at`` holds each
    request's ``time.monotonic()``.
    """

    def __init__(self, default: tuple[int, Any] = (200, {"ok": True}),
                 script: list[tuple[Any, ...]] | None = None) -> None:
        self.default = default
        self.script = list(script or [])
        self.requests: list[Recorded] = []
        self.arrived_at: list[float] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, dict(request.headers), await request.read()))
        self.arrived_at.append(time.monotonic())
        self._arrived.set()
        status, body, *headers = self.script.pop(0) if self.script else self.default
        return web.json_response(body, status=status, headers=headers[0] if headers else None)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner, self.url = await serve_locally(app)
        return self.url

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Recorded]:
        """Wait until ``count`` requests have arrived."""
        await wait_until_counted(self.requests, count, self._arrived, timeout)
        return self.requests

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> StandIn:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def session_of(client: TestClient, key: str) -> Session:
    """The stored session ``channel:sender`` of the app behind ``client``."""
    channel, _, sender = key.partition(":")
    store = client.app[RUNTIME].store
    return await store.get(key, channel=channel, sender=sender)


async def user_texts(client: TestClient, key: str) -> list[str]:
    return [t["text"] for t in (await session_of(client, key)).history if t["role"] == "user"]


async def all_events(client: TestClient) -> list[dict[str, Any]]:
    """Every event the app's store has logged (any session)."""
    store = client.app[RUNTIME].store
    return [event async for event in store.iter_events()]


async def assert_nothing_stored(client: TestClient, *keys: str) -> None:
    """No session row and no event at all in the store, and no history for ``keys``."""
    assert await all_events(client) == []
    store = client.app[RUNTIME].store
    assert store._run("SELECT count(*) FROM sessions") == [(0,)]  # SQLite store
    for key in keys:
        assert (await session_of(client, key)).history == []


async def visitor(client: TestClient, channel: str = "webchat", *,
                  origin: str | None = None) -> tuple[str, str]:
    """A new browser visitor of ``channel``: its session token and sender id."""
    response = await client.post(f"/webhooks/{channel}/session",
                                 headers={"Origin": origin} if origin else {})
    assert response.status == 200, await response.text()
    body = await response.json()
    return body["token"], body["sender"]


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
