from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.server.app import errors_middleware
from channels.delivery import DeliveryError, RetryPolicy
from channels.registry import CHANNELS
from channels.signing import sign, signature_headers, verify
from channels.webhook import WebhookChannel, WebhookSettings
from foundation.messages import BotReply, ReplyStream, UserMessage

from .support import Serve, StandIn, assert_nothing_stored, user_texts

SECRET = "webhook-secret-0123456789"
FAST = {"attempts": 3, "base_delay_s": 0.01, "timeout_s": 2.0}


@pytest.fixture
async def callback() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, {"received": True})) as stand_in:
        yield stand_in


def signed(payload: Any, *, secret: str = SECRET, now: float | None = None) -> dict[str, Any]:
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return {"data": body, "headers": {**signature_headers(secret, body, now=now),
                                      "Content-Type": "application/json"}}


async def test_signed_message_is_accepted_then_reply_posted_signed(
        serve: Serve, callback: StandIn) -> None:
    client = await serve({"webhook": {"callback_url": f"{callback.url}/hook", "secret": SECRET,
                                      "retry": FAST}})
    started = time.perf_counter()
    response = await client.post("/webhooks/webhook", **signed(
        {"sender": "crm-42", "message": "my card has not arrived", "id": "m-1"}))
    assert response.status == 202
    assert await response.json() == {"status": "accepted", "id": "m-1"}
    assert time.perf_counter() - started < 2.0  # before the turn ran
    (hit,) = await callback.wait_for(1)
    assert hit.path == "/hook"
    verify(SECRET, hit.body, signature=hit.headers["X-Bot-Signature"],
           timestamp=hit.headers["X-Bot-Timestamp"])
    reply = hit.json
    assert reply["type"] == "reply" and reply["in_reply_to"] == "m-1"
    assert reply["recipient_id"] == "crm-42" and "5-7 working days" in reply["text"]
    assert reply["citations"][0]["passage_id"] == "card-not-arrived"
    assert await user_texts(client, "webhook:crm-42") == ["my card has not arrived"]


async def test_rejected_requests_get_clear_errors_and_store_nothing(
        serve: Serve, callback: StandIn) -> None:
    client = await serve({"webhook": {"callback_url": callback.url, "secret": SECRET}})
    body = {"sender": "bad", "message": "reset my pin"}
    now = time.time()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": body}, 401, "missing request timestamp"),
        (signed(body, secret="wrong-secret-0123456789"), 401, "does not match"),
        (signed(body, now=now - 301), 401, "outside the allowed window"),
        (signed(body, now=now + 301), 401, "outside the allowed window"),
        (signed(b'{"sender": "bad",'), 400, "not valid JSON"),
        (signed(b"[1]"), 400, "must be a JSON object"),
        (signed({"message": "hi"}), 400, "'sender' is required"),
        (signed({"sender": "bad", "message": 7}), 400, "'message' must be a string"),
        (signed({"sender": "bad", "message": "x" * 70_000}), 413, "too large"),
    ]
    for request, status, text in cases:
        response = await client.post("/webhooks/webhook", **request)
        assert response.status == status, text
        assert text in (await response.json())["error"]
    tampered = signed(body)
    tampered["data"] = json.dumps({"sender": "bad", "message": "transfer"}).encode()
    response = await client.post("/webhooks/webhook", **tampered)
    assert response.status == 401
    await asyncio.sleep(0.2)
    assert callback.requests == []
    await assert_nothing_stored(client, "webhook:bad")


async def test_a_replayed_request_is_rejected(serve: Serve, callback: StandIn) -> None:
    client = await serve({"webhook": {"callback_url": callback.url, "secret": SECRET,
                                      "window_s": 60}})
    request = signed({"sender": "r1", "message": "reset my pin"})
    assert (await client.post("/webhooks/webhook", **request)).status == 202
    again = await client.post("/webhooks/webhook", **request)
    assert again.status == 401 and "replayed" in (await again.json())["error"]
    await callback.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(callback.requests) == 1
    assert await user_texts(client, "webhook:r1") == ["reset my pin"]


async def test_delivery_retries_5xx_with_backoff_then_succeeds(serve: Serve) -> None:
    flaky = StandIn(script=[(503, {}), (500, {})])
    await flaky.start()
    try:
        client = await serve({"webhook": {"callback_url": flaky.url, "secret": SECRET,
                                          "retry": {"attempts": 4, "base_delay_s": 0.05}}})
        response = await client.post("/webhooks/webhook",
                                     **signed({"sender": "f1", "message": "reset my pin"}))
        assert response.status == 202
        hits = await flaky.wait_for(3)
        assert [h.json["in_reply_to"] for h in hits] == [(await response.json())["id"]] * 3
        # each attempt is signed afresh and verifies
        for hit in hits:
            verify(SECRET, hit.body, signature=hit.headers["X-Bot-Signature"],
                   timestamp=hit.headers["X-Bot-Timestamp"])
        await asyncio.sleep(0.2)
        assert len(flaky.requests) == 3
    finally:
        await flaky.close()


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=0.5, max_delay_s=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, retry_after=2.5) == 2.5


async def _fake_answer(message: UserMessage) -> BotReply:
    return BotReply(text=f"echo {message.text}")


def _no_stream(message: UserMessage) -> ReplyStream:
    return ReplyStream.of(BotReply(text=f"echo {message.text}"))


async def channel_client(settings: WebhookSettings) -> tuple[TestClient, WebhookChannel]:
    """The webhook channel alone, with a fake core: these tests are about delivery."""
    channel = WebhookChannel(settings, on_message=_fake_answer, on_stream=_no_stream)
    app = web.Application(middlewares=[errors_middleware])
    app.add_routes(channel.routes("/hook"))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client, channel


async def test_delivery_gives_up_after_the_attempts_with_a_logged_error(
        caplog: pytest.LogCaptureFixture) -> None:
    down = StandIn(default=(502, {"error": "bad gateway"}))
    await down.start()
    settings = WebhookSettings(callback_url=down.url, secret=SECRET,
                               retry=RetryPolicy(attempts=3, base_delay_s=0.01))
    client, channel = await channel_client(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="channels"):
            response = await client.post("/hook", **signed({"sender": "g", "message": "hi"}))
            assert response.status == 202
            await down.wait_for(3)
            await channel.outbox.drain(5)
        assert len(down.requests) == 3
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        line = errors[0].getMessage()
        assert line.startswith("webhook: gave up on webhook callback to g (reply to message ")
        assert "after 3 attempts: HTTP 502" in line
        assert SECRET not in caplog.text
    finally:
        await client.close()
        await channel.close()
        await down.close()


async def test_a_4xx_is_not_retried_and_connection_errors_are() -> None:
    refusing = StandIn(default=(400, {"error": "unknown sender"}))
    await refusing.start()
    settings = WebhookSettings(callback_url=refusing.url, secret=SECRET,
                               retry=RetryPolicy(attempts=3, base_delay_s=0.01))
    client, channel = await channel_client(settings)
    try:
        with pytest.raises(DeliveryError, match=r"refused .*HTTP 400"):
            await channel.push("p1", BotReply(text="hello"))
        assert len(refusing.requests) == 1
        await refusing.close()  # nothing listens on that port now
        with pytest.raises(DeliveryError, match=r"failed after 3 attempts .*ClientConnector"):
            await channel.push("p1", BotReply(text="hello"))
    finally:
        await client.close()
        await channel.close()


async def test_push_delivers_a_signed_unsolicited_reply(serve: Serve, callback: StandIn) -> None:
    client = await serve({"webhook": {"callback_url": callback.url, "secret": SECRET}})
    channel = client.app[CHANNELS]["webhook"]
    await channel.push("crm-7", BotReply(text="An agent says hi", kind="agent"))
    (hit,) = callback.requests
    assert hit.json["recipient_id"] == "crm-7" and hit.json["in_reply_to"] is None
    assert hit.json["text"] == "An agent says hi" and hit.json["kind"] == "agent"
    assert hit.headers["X-Bot-Signature"] == sign(SECRET, hit.body,
                                                  hit.headers["X-Bot-Timestamp"])


async def test_turn_errors_reach_the_callback_as_error_events(serve: Serve,
                                                              callback: StandIn) -> None:
    client = await serve({"webhook": {"callback_url": callback.url, "secret": SECRET}},
                         turn_timeout_s=1e-6)
    blank = await client.post("/webhooks/webhook",
                              **signed({"sender": "e1", "message": "   ", "id": "blank"}))
    assert blank.status == 400 and (await blank.json())["error"] == "'message' is empty"
    response = await client.post("/webhooks/webhook",
                                 **signed({"sender": "e1", "message": "hello", "id": "slow"}))
    assert response.status == 202
    (hit,) = await callback.wait_for(1)  # the refused message was never answered
    assert hit.json == {"id": hit.headers["Idempotency-Key"], "type": "error",
                        "in_reply_to": "slow", "recipient_id": "e1",
                        "error": "no reply within 1e-06 s"}
