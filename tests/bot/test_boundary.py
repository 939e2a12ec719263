"""The boundary findings (issue: no 500 from any byte), each reproduced as it was probed
against `bot serve`: these requests once gave a 500, a dropped socket, silence, or kept a
secret. Requests go byte for byte over a real socket where a client library would refuse."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from bot.definition.loader import load_bot
from bot.server.app import create_app
from bot.server.guard import ReplyGuard
from bot.server.pipeline import PIPELINE
from channels.signing import signature_headers
from foundation.messages import UserMessage
from tests.local_redis import LocalRedis

from ..conftest import MakeBot
from .production_support import (
    AGENT_TOKEN,
    ALL_CHANNELS,
    JSON_ENDPOINTS,
    LIGHT_BOT,
    LIGHT_CORE,
    SLACK_SECRET,
    SOCKETS,
    WEBHOOK_SECRET,
    ServerThread,
    raw_request,
    redis_server,
    redis_sessions,
    signed_headers,
    socket_url,
    visitor_token,
)
from .test_security import LeakyRouter, leaky_client

__all__ = ["redis_server"]
NO_LIMITS = "  sender_rate_limit: null\n  ip_rate_limit: null\n"
HUGE = "9" * 5000


@pytest.fixture
def server(make_bot: MakeBot) -> Iterator[ServerThread]:
    root = make_bot(LIGHT_CORE + ALL_CHANNELS + NO_LIMITS, files={})
    with ServerThread(create_app(load_bot(root))) as running:
        yield running


def post(server: ServerThread, path: str, body: bytes,
         headers: dict[bytes, bytes] | None = None) -> tuple[int, Any]:
    sent = {k.encode(): v.encode() for k, v in signed_headers(path, body).items()}
    status, raw = raw_request(server.port, "POST", path.encode(), body=body,
                              headers={**sent, **(headers or {})})
    return status, json.loads(raw) if raw.startswith(b"{") else raw


def test_a_huge_integers_are_a_400_on_every_json_route_and_an_error_frame(
        server: ServerThread) -> None:
    body = ('{"sender": "r1", "message": "hi", "metadata": {"n": ' + HUGE + "}}").encode()
    for path in JSON_ENDPOINTS:
        status, answer = post(server, path, body)
        assert status == 400, (path, status, answer)
        assert "integer of 5000 digits" in answer["error"], path
    for path in SOCKETS:
        frames = [f'{{"type": "message", "message": "hi", "metadata": {{"n": {HUGE}}}}}',
                  '{"type": "message", "message": "still there?"}']
        kinds = asyncio.run(socket_kinds(server.port, path, frames))
        assert kinds[0] == "error" and kinds[1] in ("typing", "delta", "reply"), (path, kinds)


async def socket_kinds(port: int, path: str, frames: list[str]) -> list[str]:
    """The type of the first frame answering each of ``frames`` (the socket stays open)."""
    kinds = []
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(f"http://127.0.0.1:{port}{socket_url(path)}") as ws:
        for text in frames:
            await ws.send_str(text)
            message = await ws.receive(timeout=30)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            kinds.append(json.loads(message.data)["type"])
    return kinds


def test_b_lone_surrogates_outside_the_message_are_a_400(server: ServerThread) -> None:
    cases = {"/webhooks/rest": b'{"sender": "\\ud800", "message": "hi"}',
             "/webhooks/rest/feedback": b'{"sender": "r1", "rating": "down", '
                                        b'"comment": "a\\ud800", "reply_index": 0}',
             "/agent/take": b'{"conversation": "rest:a\\ud800"}',
             "/webhooks/webhook": b'{"sender": "\\ud800x", "message": "hi"}'}
    for path, body in cases.items():
        status, answer = post(server, path, body)
        assert status == 400 and "binary data" in answer["error"], (path, status, answer)
    status, answer = raw_request(server.port, "GET", b"/agent/conversation?id=rest:a%ED%A0%80",
                                 headers={b"Authorization": f"Bearer {AGENT_TOKEN}".encode()})
    assert status in (400, 404), (status, answer)


def test_c_credentials_that_are_not_ascii_are_refused_not_crashed(
        server: ServerThread) -> None:
    bad = [b"Bearer abc.\xc3\xa9", b"Bearer \xff\xfe", b"Bearer abc def"]
    for value in bad:
        for method, path in [("POST", "/webhooks/webchat"), ("POST", "/webhooks/rest/feedback"),
                             ("GET", "/agent/conversations"), ("POST", "/agent/take"),
                             ("GET", "/webhooks/rest/outbox?sender=r1")]:
            status, answer = raw_request(server.port, method, path.encode(), body=b"{}",
                                         headers={b"Authorization": value})
            assert status in (400, 401, 403), (path, value, status, answer)
    for header in (b"X-Api-Token",):
        status, _ = raw_request(server.port, "GET", b"/agent/conversations",
                                headers={header: b"\xff\xfe"})
        assert status == 401
    for target in (b"/webhooks/rest/outbox?sender=r1&token=a.%C3%A9",
                   b"/webhooks/websocket?token=a.%C3%A9", b"/webhooks/webchat/ws?token=%FF"):
        status, _ = raw_request(server.port, "GET", target, headers={
            b"Upgrade": b"websocket", b"Connection": b"Upgrade", b"Sec-WebSocket-Version": b"13",
            b"Sec-WebSocket-Key": b"dGhlIHNhbXBsZSBub25jZQ=="})
        assert status in (400, 401), (target, status)


def test_tokens_count_only_in_headers_but_on_a_websocket_handshake(
        server: ServerThread) -> None:
    token = visitor_token("webchat")
    status, _ = raw_request(server.port, "GET",
                            f"/webhooks/rest/outbox?channel=webchat&token={token}".encode())
    assert status == 401  # a token in a URL ends up in proxy logs: refused
    status, _ = raw_request(server.port, "GET", b"/webhooks/rest/outbox?channel=webchat",
                            headers={b"Authorization": f"Bearer {token}".encode()})
    assert status == 200


def test_d_a_malformed_origin_is_a_403_on_any_route(server: ServerThread) -> None:
    for origin in (b"http://[", b"https://[::1", b"\xff", b"https://shop.example.com\x7f"):
        for method, path in [("POST", "/webhooks/rest"), ("GET", "/health"),
                             ("OPTIONS", "/webhooks/rest")]:
            status, answer = raw_request(server.port, method, path.encode(),
                                         body=b'{"sender": "r", "message": "hi"}',
                                         headers={b"Origin": origin,
                                                  b"Content-Type": b"application/json"})
            assert status in (400, 403), (origin, path, status, answer)  # 400: HTTP parser
            assert b"\xff" not in answer


def test_e_malformed_signature_headers_are_a_401(server: ServerThread) -> None:
    body = b'{"sender": "svc", "message": "hi"}'
    stamp = str(int(time.time())).encode()
    arabic = "".join(chr(0x660 + int(d)) for d in stamp.decode()).encode()
    cases = [
        ("/webhooks/webhook", {b"X-Bot-Timestamp": stamp, b"X-Bot-Signature": b"sha256=\xff"}),
        ("/webhooks/webhook", {b"X-Bot-Timestamp": arabic,
                               b"X-Bot-Signature": signature_headers(
                                   WEBHOOK_SECRET, body)["X-Bot-Signature"].encode()}),
        ("/webhooks/slack", {b"X-Slack-Request-Timestamp": stamp,
                             b"X-Slack-Signature": b"v0=\xff"}),
        ("/webhooks/slack", {b"X-Slack-Request-Timestamp": arabic,
                             b"X-Slack-Signature": b"v0=" + SLACK_SECRET.encode()}),
        ("/webhooks/telegram", {b"X-Telegram-Bot-Api-Secret-Token": b"\xff"}),
    ]
    for path, headers in cases:
        status, answer = raw_request(server.port, "POST", path.encode(), body=body,
                                     headers={b"Content-Type": b"application/json", **headers})
        assert status == 401, (path, headers, status, answer)


def test_a_message_typed_with_a_secret_is_stored_masked(server: ServerThread) -> None:
    text = (f"my agent token is {AGENT_TOKEN} and my key sk-live0123456789abcdefABCDEF; "
            "also ghp_0123456789abcdefghijklmnopqrstuvwxyzAB")
    status, _ = post(server, "/webhooks/rest",
                     json.dumps({"sender": "leaky", "message": text}).encode())
    assert status == 200
    store = server.app[PIPELINE].store
    session = server.call(store.get("rest:leaky", channel="rest", sender="leaky"))
    stored = json.dumps(session.history)
    assert AGENT_TOKEN not in stored and "sk-live0123" not in stored and "ghp_0123" not in stored
    assert stored.count("[SECRET]") == 3 and "my agent token is" in stored

    async def events() -> str:
        return json.dumps([e async for e in store.iter_events(key="rest:leaky")])

    assert AGENT_TOKEN not in server.call(events())


async def test_history_stores_the_reply_the_customer_was_sent(make_bot: MakeBot) -> None:
    root = make_bot(LIGHT_BOT, files={})
    from adapters.engines.prompting import system_prompt

    router = LeakyRouter({"tell me about yourself": system_prompt(load_bot(root).config.persona)})
    client = await leaky_client(root, router)
    try:
        response = await client.post("/webhooks/rest", json={"sender": "m",
                                                             "message": "tell me about yourself"})
        (reply,) = await response.json()
        assert reply["kind"] == "blocked"
        store = client.app[PIPELINE].store  # type: ignore[index]
        session = await store.get("rest:m", channel="rest", sender="m")
        (bot_turn,) = [t for t in session.history if t["role"] == "bot"]
        assert bot_turn["text"] == reply["text"] and bot_turn["kind"] == "blocked"
        assert "ZEBRA-42" not in json.dumps(session.history)
    finally:
        await client.close()


def test_the_reply_guard_leaves_the_bots_own_form_prompts_alone(make_bot: MakeBot) -> None:
    forms = """
forms:
  verify:
    slots:
      - name: born
        type: date
        prompt: What is your date of birth, for example 1990-01-31?
"""
    config = load_bot(make_bot(LIGHT_BOT + forms, files={})).config
    prompt = "What is your date of birth, for example 1990-01-31?"
    assert ReplyGuard(config).check(prompt).text == prompt
    assert ReplyGuard(config).check("Bob was born on 1985-03-02.").problems == ("foreign_pii",)


def test_multi_part_replies_never_quote_the_customer() -> None:
    from bot.dialogue.stages.faq import part_name

    template = load_defaults_unknown_part()
    assert "{part}" in template and '"{part}"' not in template
    assert part_name(1, 2) == "the second part of your question"
    assert part_name(2, 3) == "the last part of your question"
    assert part_name(7, 9) == "part 8 of your question"


def load_defaults_unknown_part() -> str:
    from adapters.settings import AnswerSettings

    return AnswerSettings().unknown_part


def test_a_frozen_redis_gives_503_within_bounded_time(make_bot: MakeBot,
                                                      redis_server: LocalRedis) -> None:
    root = make_bot(LIGHT_BOT + redis_sessions(redis_server.url), files={})
    assert redis_server.process is not None
    pid = redis_server.process.pid
    with ServerThread(create_app(load_bot(root))) as running:
        body = json.dumps({"sender": "frozen", "message": "hello"}).encode()
        assert running.post("/webhooks/rest", body, "application/json")[0] == 200
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.perf_counter()
            status, raw = running.post("/webhooks/rest", body, "application/json")
            waited = time.perf_counter() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert status == 503 and b"temporarily unavailable" in raw, (status, raw)
        assert waited < 12, waited  # one bounded store call, not the whole freeze
        assert running.post("/webhooks/rest", body, "application/json")[0] == 200


def test_an_unanswerable_signed_webhook_message_gets_an_error_callback(
        make_bot: MakeBot) -> None:
    from aiohttp import web

    from .production_support import ServerThread as Thread

    received: list[dict[str, Any]] = []
    sink = web.Application()

    async def callback(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    sink.router.add_post("/callback", callback)
    with Thread(sink) as catcher:
        channels = f"""
channels:
  webhook:
    callback_url: http://127.0.0.1:{catcher.port}/callback
    secret: {WEBHOOK_SECRET}
"""
        root = make_bot(LIGHT_CORE + channels, files={})
        app = create_app(load_bot(root))
        with ServerThread(app) as running:
            async def broken(message: UserMessage) -> Any:
                raise RuntimeError("a bug in the core")

            from channels.registry import CHANNELS

            running.app[CHANNELS]["webhook"].on_message = broken  # type: ignore[attr-defined]
            body = b'{"sender": "svc", "message": "hi", "id": "m-1"}'
            status, raw = running.post("/webhooks/webhook", body, "application/json",
                                       headers=signature_headers(WEBHOOK_SECRET, body))
            assert status == 202, raw
            deadline = time.monotonic() + 20
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
    assert received and received[0]["type"] == "error" and received[0]["in_reply_to"] == "m-1"
