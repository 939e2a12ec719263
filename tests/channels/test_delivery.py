"""The one delivery path (channels/delivery.py, channels/pacing.py) against a real loopback
HTTP server: idempotency keys, rate limits, Retry-After and the give-up line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from email.utils import formatdate

import pytest

from channels.delivery import DeliveryError, Outbox, RetryPolicy, masked, scrubbed
from channels.pacing import Pacer, RateLimit, TokenBucket
from channels.registry import channel_settings
from channels.signing import verify
from channels.telegram import TELEGRAM_RATE
from channels.twilio_sms import TwilioSettings, TwilioSmsChannel
from channels.webhook import WebhookChannel, WebhookSettings
from foundation.errors import ConfigError
from foundation.messages import BotReply, ReplyStream, UserMessage
from foundation.settings import Where

from .support import StandIn

SECRET = "webhook-secret-0123456789"
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, timeout_s=2.0)
UNAVAILABLE = (503, {"error": "try later"})


@pytest.fixture
async def api() -> AsyncIterator[StandIn]:
    async with StandIn() as stand_in:
        yield stand_in


async def _no_answer(message: UserMessage) -> BotReply:
    raise AssertionError("not called")


async def _no_stream(message: UserMessage) -> ReplyStream:
    raise AssertionError("not called")


async def test_a_webhook_delivery_keeps_its_idempotency_key_across_retries(
        api: StandIn) -> None:
    api.script = [UNAVAILABLE, UNAVAILABLE]  # the first delivery succeeds on its third try
    channel = WebhookChannel(WebhookSettings(callback_url=api.url, secret=SECRET, retry=FAST),
                             on_message=_no_answer, on_stream=_no_stream)
    try:
        await channel.push("crm-1", BotReply(text="first", kind="agent"))
        await channel.push("crm-1", BotReply(text="second", kind="agent"))
    finally:
        await channel.close()
    first, second = api.requests[:3], api.requests[3:]
    assert len(first) == 3 and len(second) == 1
    keys = {hit.headers["Idempotency-Key"] for hit in first}
    assert len(keys) == 1  # one key for the delivery, the same on each retry
    (key,) = keys
    for hit in first:  # the key is inside the signed body too, and each try is signed afresh
        assert hit.json["id"] == key and hit.json["text"] == "first"
        verify(SECRET, hit.body, signature=hit.headers["X-Bot-Signature"],
               timestamp=hit.headers["X-Bot-Timestamp"])
    assert second[0].headers["Idempotency-Key"] == second[0].json["id"] != key


async def test_every_delivery_of_an_outbox_gets_a_key_in_its_header(api: StandIn) -> None:
    outbox = Outbox("test", FAST, idempotency_header="X-Key")
    plain = Outbox("plain", FAST)
    try:
        api.script = [UNAVAILABLE]
        await outbox.post(api.url, {"n": 1}, what="test send")
        await outbox.post(api.url, {"n": 2}, what="test send", key="given-key")
        await plain.post(api.url, {"n": 3}, what="plain send")
    finally:
        await outbox.close()
        await plain.close()
    one, retry, given, unkeyed = api.requests
    assert one.headers["X-Key"] == retry.headers["X-Key"]
    assert len(one.headers["X-Key"]) == 32 and given.headers["X-Key"] == "given-key"
    assert "X-Key" not in unkeyed.headers and "Idempotency-Key" not in unkeyed.headers


async def test_the_overall_bucket_spaces_sends_and_drops_none(api: StandIn) -> None:
    outbox = Outbox("test", FAST, RateLimit(rate_per_s=10, burst=2))
    try:
        started = time.monotonic()
        await asyncio.gather(*(outbox.post(api.url, {"n": n}, what="test send", to=f"u{n}")
                               for n in range(7)))
        elapsed = time.monotonic() - started
    finally:
        await outbox.close()
    assert sorted(hit.json["n"] for hit in api.requests) == list(range(7))
    assert elapsed >= (7 - 2) / 10 * 0.9  # the burst of 2 at once, then one every 0.1 s


async def test_a_lane_is_paced_on_its_own(api: StandIn) -> None:
    outbox = Outbox("test", FAST, RateLimit(each_rate_per_s=5, each_burst=1))
    try:
        started = time.monotonic()
        for n in range(4):
            await outbox.post(api.url, {"n": n}, what="test send", to="chat-1")
        elapsed = time.monotonic() - started
        # another lane is not held back by chat-1's turn: its first send waits nothing
        assert await outbox.pacer.wait("chat-2") == 0.0
    finally:
        await outbox.close()
    assert len(api.requests) == 4
    assert elapsed >= 3 / 5 * 0.9
    gaps = [b - a for a, b in zip(api.arrived_at, api.arrived_at[1:], strict=False)]
    assert min(gaps) >= 0.2 * 0.8


def test_a_token_bucket_reserves_slots_in_order() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert bucket.take(110.0) == 0.0  # refilled, never past the burst
    assert bucket.tokens == 2.0


async def test_no_limit_means_no_wait() -> None:
    pacer = Pacer(RateLimit(rate_per_s=0))
    assert [await pacer.wait("x") for _ in range(100)] == [0.0] * 100


def test_rate_limit_settings_override_the_providers_defaults_field_by_field() -> None:
    settings = channel_settings("telegram", {
        "token": "123456:ABC-DEF", "secret_token": "s3cret", "rate_limit": {"burst": 5}},
        Where("bot.yaml", "channels.telegram"))
    assert settings.rate_limit.over(TELEGRAM_RATE) == RateLimit(
        rate_per_s=30, burst=5, each_rate_per_s=1, each_burst=3)
    off = RateLimit(rate_per_s=0, each_rate_per_s=0).over(TELEGRAM_RATE)
    assert Pacer(off).overall is None
    with pytest.raises(ConfigError, match=r"channels.slack.rate_limit.rate_per_s: must be 0"):
        channel_settings("slack", {"signing_secret": "s", "bot_token": "xoxb-1",
                                   "rate_limit": {"rate_per_s": -1}},
                         Where("bot.yaml", "channels.slack"))


async def test_retry_after_is_honoured_in_seconds_and_as_a_date(api: StandIn) -> None:
    api.script = [(429, {"error": "slow down"}, {"Retry-After": "1"}), (200, {"ok": True})]
    outbox = Outbox("test", FAST)
    try:
        await outbox.post(api.url, {"n": 1}, what="test send")
        api.script = [(503, {"error": "maintenance"},
                       {"Retry-After": formatdate(time.time() + 2, usegmt=True)})]
        await outbox.post(api.url, {"n": 2}, what="test send")
    finally:
        await outbox.close()
    at = api.arrived_at
    assert len(at) == 4
    assert at[1] - at[0] >= 0.95  # not the 0.01 s backoff
    assert at[3] - at[2] >= 0.9  # an HTTP date (whole seconds) at least one second ahead


async def test_a_retry_after_past_the_limit_gives_up_at_once(
        api: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    api.default = (429, {"error": "flood"}, {"Retry-After": "3600"})
    outbox = Outbox("test", FAST)
    try:
        with caplog.at_level(logging.WARNING, logger="channels"), \
                pytest.raises(DeliveryError, match="put off for too long"):
            await outbox.post(api.url, {}, what="test send", to="chat-9")
    finally:
        await outbox.close()
    assert len(api.requests) == 1
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "after 1 attempt: HTTP 429" in line and "asked to wait 3600 s" in line


async def test_giving_up_logs_one_line_with_channel_what_masked_recipient_and_attempts(
        api: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    api.default = (502, {"error": "bad gateway"})
    outbox = Outbox("whatsapp", FAST, idempotency_header="X-Key")
    phone = "whatsapp:+15551234567"
    try:
        with caplog.at_level(logging.WARNING, logger="channels"):
            await outbox.attempt(outbox.post(api.url, {"to": phone}, what="whatsapp message",
                                             to=phone), about="message wamid.1")
    finally:
        await outbox.close()
    assert len(api.requests) == 3
    key = api.requests[0].headers["X-Key"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "whatsapp: gave up on whatsapp message to whatsapp:+***4567 (reply to message "
        f"wamid.1) after 3 attempts: HTTP 502: {{\"error\": \"bad gateway\"}} [delivery {key}]"]
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 2 and all(key in line for line in retries)
    assert "5551234567" not in caplog.text


async def test_a_refusal_and_a_bad_answer_are_given_up_without_retries(
        api: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    api.script = [(400, {"error": "unknown recipient"}), (200, {"ok": False, "error": "nope"})]
    outbox = Outbox("slack", FAST)
    try:
        with caplog.at_level(logging.ERROR, logger="channels"):
            with pytest.raises(DeliveryError, match=r"refused \(HTTP 400"):
                await outbox.post(api.url, {}, what="slack chat.postMessage", to="C024BE91L")
            with pytest.raises(DeliveryError, match=r"refused .*slack said nope"):
                await outbox.post(api.url, {}, what="slack chat.postMessage", to="C024BE91L",
                                  accept=lambda r: None if r.get("ok") else "slack said nope")
    finally:
        await outbox.close()
    assert len(api.requests) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("to C024BE91L after 1 attempt:" in line for line in lines)


def test_recipients_are_masked_when_they_are_numbers_or_addresses() -> None:
    assert masked("+447700900123") == "+***0123"
    assert masked("15551234567") == "***4567"  # a WhatsApp id is a phone number
    assert masked("jane.doe@example.com") == "j***@example.com"
    assert masked("C024BE91L") == "C024BE91L"  # a Slack channel
    assert scrubbed('{"message": "The \'To\' number +1 555 123 4567 is not valid", '
                    '"more": "mail jane@example.com"}') == (
        '{"message": "The \'To\' number +***4567 is not valid", "more": "mail j***@example.com"}')
    assert masked("x" * 100).endswith("...") and len(masked("x" * 100)) == 64


async def test_twilio_paces_per_sending_number(api: StandIn) -> None:
    api.default = (201, {"sid": "SM1"})
    settings = TwilioSettings(account_sid="AC" + "0" * 32, auth_token="token",
                              public_url="https://bot.example.com/webhooks/twilio",
                              api_base=api.url, retry=FAST,
                              rate_limit=RateLimit(each_rate_per_s=5, each_burst=1))
    channel = TwilioSmsChannel(settings, on_message=_no_answer, on_stream=_no_stream)
    try:  # two customers, one number of ours: one lane
        await channel.send("+15550000001", "+15559990000", "hello")
        await channel.send("+15550000002", "+15559990000", "hello")
    finally:
        await channel.close()
    assert [hit.body.count(b"To=%2B1555000000") for hit in api.requests] == [1, 1]
    assert api.arrived_at[1] - api.arrived_at[0] >= 0.2 * 0.8
