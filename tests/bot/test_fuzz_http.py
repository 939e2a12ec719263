"""Fuzz the HTTP and WebSocket endpoints: random bytes and JSON shapes (any nesting depth,
size and type) never give a 5xx, a dropped socket, or harm the store."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.build import train
from bot.definition.loader import load_bot
from bot.server.app import create_app
from bot.server.pipeline import PIPELINE

from ..conftest import BOT_YAML, MakeBot
from .fuzz_support import (
    NO_LIMITS,
    bodies,
    hostile_bytes,
    hostile_text,
    json_values,
    quoted,
)
from .production_support import (
    FORM_ENDPOINTS,
    JSON_ENDPOINTS,
    SOCKETS,
    TOKEN_ENDPOINTS,
    ServerThread,
    raw_request,
    signed_headers,
    socket_url,
)

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


def test_every_json_and_websocket_endpoint_survives_random_shapes(
        every_channel: ServerThread) -> None:
    server = every_channel

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(path=st.sampled_from(JSON_ENDPOINTS + FORM_ENDPOINTS + TOKEN_ENDPOINTS),
           body=bodies)
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


header_names = st.sampled_from([
    b"Authorization", b"X-Api-Token", b"Origin", b"X-Bot-Signature", b"X-Bot-Timestamp",
    b"X-Slack-Signature", b"X-Slack-Request-Timestamp", b"X-Telegram-Bot-Api-Secret-Token",
    b"X-Hub-Signature-256", b"X-Twilio-Signature", b"X-Request-Id", b"Content-Type",
    b"X-Forwarded-For", b"Cookie"])
query_names = st.sampled_from(["token", "id", "sender", "channel", "status", "since", "x",
                               "hub.mode", "hub.verify_token", "hub.challenge"])
json_bodies = st.one_of(
    hostile_text.map(lambda t: ('{"sender": "' + t + '", "message": "hi"}').encode(
        "utf-8", "surrogatepass")),
    hostile_text.map(lambda t: ('{"sender": "f", "message": "hi", "metadata": {"n": '
                                + (t if t.lstrip("-").isdigit() else '"' + t + '"')
                                + "}}").encode("utf-8", "surrogatepass")),
    st.binary(max_size=200), st.just(b"[" * 5000))


def test_every_route_header_and_query_survives_hostile_bytes(
        every_channel: ServerThread) -> None:
    server = every_channel
    routes = sorted({(r.method, r.resource.canonical) for r in server.app.router.routes()
                     if r.resource is not None and r.method in ("GET", "POST", "OPTIONS")})
    assert len(routes) >= 15, routes
    statuses: list[int] = []

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(route=st.sampled_from(routes), segment=hostile_bytes,
           headers=st.dictionaries(header_names, hostile_bytes, max_size=3),
           query=st.lists(st.tuples(query_names, hostile_bytes), max_size=3), body=json_bodies)
    def request(route: tuple[str, str], segment: bytes, headers: dict[bytes, bytes],
                query: list[tuple[str, bytes]], body: bytes) -> None:
        method, template = route
        path = re.sub(r"\{[^}]+\}", quoted(segment).decode(), template).encode()
        if query:
            path += b"?" + b"&".join(name.encode() + b"=" + quoted(v) for name, v in query)
        status, raw = raw_request(server.port, method, path, headers=headers,
                                  body=body if method == "POST" else b"")
        assert status < 500, (method, path, headers, status, raw[:300])
        statuses.append(status)

    request()
    assert len(statuses) >= 200 and len(set(statuses)) >= 4, sorted(set(statuses))


def test_every_websocket_frame_type_gets_an_answer_not_a_drop(
        every_channel: ServerThread) -> None:
    async def talk(path: str) -> list[str]:
        kinds = []
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(f"http://127.0.0.1:{every_channel.port}{socket_url(path)}",
                                max_msg_size=0) as ws:
            sends = [ws.send_bytes(b"\xff\x00binary"), ws.send_str('{"n": ' + "9" * 5000 + "}"),
                     ws.send_str('{"type": "message", "message": "\\ud800"}'),
                     ws.send_str('{"type": "hello", "sender": "\\udfff"}'),
                     ws.send_str('{"type": ' + "[" * 3000 + "]" * 3000 + "}")]
            for send in sends:
                await send
                message = await ws.receive(timeout=30)
                assert message.type == aiohttp.WSMsgType.TEXT, message
                kinds.append(json.loads(message.data)["type"])
            await ws.ping()
            assert not ws.closed
        return kinds

    for path in SOCKETS:
        assert asyncio.run(talk(path)) == ["error"] * 5, path
