"""Fuzz the HTTP endpoints: random bytes and JSON shapes never give a 5xx or harm the store."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.build import train
from bot.definition.loader import load_bot
from bot.server.app import create_app
from bot.server.pipeline import PIPELINE
from tests.local_redis import free_port

from ..conftest import BOT_YAML, MakeBot

NO_LIMITS = "security:\n  sender_rate_limit: null\n  ip_rate_limit: null\n"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)
requests = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"sender": json_values | st.text(max_size=300),
                           "message": json_values | st.text(max_size=5000)},
                          optional={"metadata": json_values}).map(
        lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(
        lambda t: json.dumps({"sender": "fuzz", "message": t}).encode()),
    st.integers(65_000, 150_000).map(
        lambda n: b'{"sender": "big", "message": "' + b"x" * n + b'"}'),
)


class ServerThread:
    """Serve an aiohttp app on 127.0.0.1 from a thread, for synchronous clients."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(app, access_log=None)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=120)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def post(self, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture
def server(make_bot: MakeBot) -> Iterator[ServerThread]:
    root = make_bot(BOT_YAML + NO_LIMITS)
    train(load_bot(root), progress=False)
    with ServerThread(create_app(load_bot(root))) as running:
        yield running


def test_rest_endpoint_survives_random_input(server: ServerThread) -> None:
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    ok = {"count": 0}

    def say(sender: str, text: str) -> dict[str, Any]:
        status, body = server.post("/webhooks/rest", json.dumps(
            {"sender": sender, "message": text}).encode(), "application/json")
        assert status == 200
        ok["count"] += 1
        (reply,) = json.loads(body)
        return reply  # type: ignore[no-any-return]

    assert say(sentinel, "my card has not arrived")["kind"] == "faq"

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=requests, content_type=st.sampled_from(
        ["application/json", "text/plain", "application/octet-stream", ""]))
    def check(body: bytes, content_type: str) -> None:
        status, raw = server.post("/webhooks/rest", body, content_type)
        assert status < 500, (status, raw[:300])
        if status == 200:
            ok["count"] += 1
            assert isinstance(json.loads(raw), list)
        else:
            assert status in (400, 413) and "error" in json.loads(raw)

    check()

    assert say(sentinel, "how do I reset my PIN?")["kind"] == "faq"
    store = server.app[PIPELINE].store
    session = server.call(store.get(f"rest:{sentinel}", channel="rest", sender=sentinel))
    assert [t["text"] for t in session.history if t["role"] == "user"] == \
        ["my card has not arrived", "how do I reset my PIN?"]

    async def turn_events() -> int:
        return sum([e["kind"] == "turn" async for e in store.iter_events()])

    assert server.call(turn_events()) == ok["count"]  # one turn event per answered request
