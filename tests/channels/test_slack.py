from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.errors import ChannelError
from channels.registry import CHANNELS
from foundation.messages import BotReply

from .support import Serve, StandIn, assert_nothing_stored, user_texts

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
POSTED = {"ok": True, "channel": "D123ABC456", "ts": "1.2"}  # chat.postMessage's answer
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"


def event(text: str = "my card has not arrived", *, event_id: str = "Ev123ABC456",
          **fields: Any) -> dict[str, Any]:
    """An Events API ``event_callback`` as Slack sends it."""
    inner = {"type": "message", "channel": "D123ABC456", "user": "U123ABC456", "text": text,
             "ts": "1355517523.000005", "event_ts": "1355517523.000005",
             "channel_type": "im", **fields}
    return {"token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456",
            "event": inner, "type": "event_callback", "event_id": event_id,
            "event_time": 1355517523,
            "authorizations": [{"team_id": "T123ABC456", "user_id": "U0BOT", "is_bot": True}]}


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, now: float | None = None,
                  **extra: str) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body,
                      hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/json", **extra}


async def post(client: Any, payload: Any, **header_options: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post("/webhooks/slack", data=body,
                             headers=slack_headers(body, **header_options))


@pytest.fixture
async def slack_api() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, POSTED)) as stand_in:
        yield stand_in


def settings(api: StandIn) -> dict[str, Any]:
    return {"slack": {"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN,
                      "api_base": api.url, "retry": {"attempts": 3, "base_delay_s": 0.01}}}


async def test_url_verification_returns_the_challenge(serve: Serve, slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    response = await post(client, {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge,
                                   "type": "url_verification"})
    assert response.status == 200 and await response.json() == {"challenge": challenge}


async def test_message_event_is_acknowledged_then_answered(serve: Serve,
                                                          slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    started = time.perf_counter()
    response = await post(client, event("my card &amp; PIN: card has not arrived"))
    assert response.status == 200 and await response.json() == {"ok": True}
    assert time.perf_counter() - started < 2.0
    (call,) = await slack_api.wait_for(1)
    assert call.path == "/chat.postMessage"
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.json["channel"] == "D123ABC456" and "thread_ts" not in call.json
    assert call.json["text"].startswith("Cards arrive within 5-7 working days")
    assert "Sources: My card has not arrived yet" in call.json["text"]
    assert await user_texts(client, "slack:U123ABC456") == ["my card & PIN: card has not arrived"]


async def test_thread_replies_stay_in_the_thread(serve: Serve, slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    await post(client, event("reset my pin", channel="C0GENERAL", channel_type="channel",
                             thread_ts="1355517500.000001"))
    (call,) = await slack_api.wait_for(1)
    assert call.json["channel"] == "C0GENERAL"
    assert call.json["thread_ts"] == "1355517500.000001"


async def test_bad_signatures_json_and_sizes_are_rejected_storing_nothing(
        serve: Serve, slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    body = json.dumps(event()).encode()
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (body, {"Content-Type": "application/json"}, 401, "missing request timestamp"),
        (body, slack_headers(body, secret="not-the-secret"), 401, "does not match"),
        (body, slack_headers(body, now=time.time() - 301), 401, "outside the allowed window"),
        (body, {**slack_headers(body), "X-Slack-Signature": ""}, 401, "missing X-Slack"),
        (b'{"type": "event_callback",', slack_headers(b'{"type": "event_callback",'), 400,
         "not valid JSON"),
    ]
    big = json.dumps(event("x" * 70_000)).encode()
    cases.append((big, slack_headers(big), 413, "too large"))
    tampered = slack_headers(body)
    cases.append((body.replace(b"card", b"cart"), tampered, 401, "does not match"))
    for data, headers, status, text in cases:
        response = await client.post("/webhooks/slack", data=data, headers=headers)
        assert response.status == status, text
        assert text in (await response.json())["error"]
    await asyncio.sleep(0.2)
    assert slack_api.requests == []
    await assert_nothing_stored(client, "slack:U123ABC456")


async def test_bot_messages_subtypes_and_retries_are_ignored(serve: Serve,
                                                             slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    ignored = [
        event(event_id="Ev1", bot_id="B0BOT", subtype="bot_message"),
        event(event_id="Ev2", bot_id="B0BOT"),
        event(event_id="Ev3", subtype="message_changed"),
        event(event_id="Ev4", subtype="channel_join"),
        {**event(event_id="Ev5"), "event": {"type": "reaction_added", "user": "U1"}},
        {"type": "app_rate_limited", "team_id": "T123ABC456"},
    ]
    for payload in ignored:
        response = await post(client, payload)
        assert response.status == 200 and "ignored" in await response.json()
    await asyncio.sleep(0.2)
    assert slack_api.requests == []
    await assert_nothing_stored(client, "slack:U123ABC456")
    response = await post(client, event("reset my pin", event_id="Ev9"))
    assert response.status == 200
    retry = await post(client, event("reset my pin", event_id="Ev9"), now=time.time() + 1,
                       **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status == 200 and retry.headers["X-Slack-No-Retry"] == "1"
    await slack_api.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(slack_api.requests) == 1
    assert await user_texts(client, "slack:U123ABC456") == ["reset my pin"]


async def test_a_replayed_request_is_rejected(serve: Serve, slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    body = json.dumps(event("reset my pin", event_id="EvR")).encode()
    headers = slack_headers(body)
    assert (await client.post("/webhooks/slack", data=body, headers=headers)).status == 200
    again = await client.post("/webhooks/slack", data=body, headers=headers)
    assert again.status == 401 and "replayed" in (await again.json())["error"]


async def test_api_errors_and_push(serve: Serve, slack_api: StandIn) -> None:
    client = await serve(settings(slack_api))
    channel = client.app[CHANNELS]["slack"]
    await post(client, event("reset my pin", channel="C0SUPPORT", event_id="EvP"))
    await slack_api.wait_for(1)
    await channel.push("U123ABC456", BotReply(text="Sam <agent> here & ready", kind="agent"))
    assert slack_api.requests[1].json == {"channel": "C0SUPPORT",
                                          "text": "Sam &lt;agent&gt; here &amp; ready"}
    await channel.push("U0NEW", BotReply(text="hi"))  # never wrote: their DM with the app
    assert slack_api.requests[2].json["channel"] == "U0NEW"
    slack_api.default = (200, {"ok": False, "error": "channel_not_found"})
    with pytest.raises(ChannelError, match="channel_not_found"):
        await channel.push("U0GONE", BotReply(text="hi"))
    assert len(slack_api.requests) == 4  # a refusal in a 200 is not retried
