"""Fuzz the HTTP and WebSocket endpoints: random bytes and JSON shapes (any nesting depth,
size and type) never give a 5xx, a dropped socket, or harm the store."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
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
from .production_support import (
    ALL_CHANNELS,
    JSON_ENDPOINTS,
    LIGHT_CORE,
    SOCKETS,
    signed_headers,
    socket_url,
)

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

    def post(self, path: str, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", path, body=body,
                               headers={**(headers or {}), "Content-Type": content_type})
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


def nested(depth: int, leaf: str, kind: str) -> str:
    """JSON text nesting ``leaf`` (JSON text) ``depth`` levels deep in lists or objects."""
    opening, closing = ("[", "]") if kind == "list" else ('{"k": ', "}")
    return opening * depth + leaf + closing * depth


leaves = json_values.map(json.dumps)
shapes = st.one_of(  # JSON text of the values endpoints read: any depth, size and type
    st.builds(nested, st.integers(0, 3000), leaves, st.sampled_from(["list", "dict"])),
    leaves, st.text(max_size=6000).map(json.dumps),
    st.sampled_from(["0", "-1", "1e308", "true", "null", '""', "[]", "{}"]))
fields = st.sampled_from(["sender", "message", "metadata", "id", "text", "agent", "rating",
                          "reply_index", "comment", "channel", "type", "event", "update_id"])
bodies = st.one_of(
    st.dictionaries(fields, shapes, max_size=4).map(
        lambda v: ("{" + ", ".join(f'"{k}": {t}' for k, t in v.items()) + "}").encode()),
    shapes.map(str.encode),
    st.binary(max_size=2000),
    st.integers(60_000, 100_000).map(lambda n: b'{"message": "' + b"x" * n + b'"}'))


@pytest.fixture
def every_channel(make_bot: MakeBot) -> Iterator[ServerThread]:
    root = make_bot(LIGHT_CORE + ALL_CHANNELS + NO_LIMITS.removeprefix("security:\n"),
                    files={})
    with ServerThread(create_app(load_bot(root))) as running:
        yield running


def test_every_json_and_websocket_endpoint_survives_random_shapes(
        every_channel: ServerThread) -> None:
    server = every_channel

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(path=st.sampled_from(JSON_ENDPOINTS), body=bodies)
    def post(path: str, body: bytes) -> None:
        status, raw = server.post(path, body, "application/json",
                                  headers=signed_headers(path, body))
        assert status < 500, (path, status, raw[:300])

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(path=st.sampled_from(SOCKETS), frames=st.lists(bodies, min_size=1, max_size=3))
    def talk(path: str, frames: list[bytes]) -> None:
        assert asyncio.run(socket_frames(server.port, path, frames)) == len(frames)

    post()
    talk()


async def socket_frames(port: int, path: str, frames: list[bytes]) -> int:
    """Send each frame; count those answered by an error frame or a reply (never a drop)."""
    answered = 0
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(f"http://127.0.0.1:{port}{socket_url(path)}", max_msg_size=0) as ws:
        for raw in frames:
            await ws.send_str(raw.decode("utf-8", "replace"))
            while True:
                message = await ws.receive(timeout=30)
                assert message.type == aiohttp.WSMsgType.TEXT, message
                frame = json.loads(message.data)
                if frame["type"] in ("error", "reply", "ready"):
                    answered += 1
                    break
    return answered
