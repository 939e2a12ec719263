"""Helpers for the Meta Graph connector tests (WhatsApp, Messenger, Instagram): webhooks
signed as Meta signs them, the verification handshake, and the settings of a channel whose
Graph API is a loopback stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient

from foundation.messages import BotReply, UserMessage

from .support import Recorded, StandIn, assert_nothing_stored

APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
VERIFY_TOKEN = "verify-me_3f9c"
ACCESS_TOKEN = "EAAJB0a3ZCRZBsBAKtestaccesstoken"
SIGNED = "sign it"  # deliver(): sign the body with APP_SECRET


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    """``X-Hub-Signature-256`` as Meta computes it: HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def graph_settings(api: StandIn, **extra: Any) -> dict[str, Any]:
    return {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
            "access_token": ACCESS_TOKEN, "graph_base": api.url,
            "retry": {"attempts": 3, "base_delay_s": 0.01}, **extra}


async def deliver(client: TestClient, channel: str, body: Any,
                  signature: str | None = SIGNED) -> Any:
    """POST ``body`` (JSON, or raw bytes) to the channel's webhook."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = meta_signature(data) if signature == SIGNED \
            else signature
    return await client.post(f"/webhooks/{channel}", data=data, headers=headers)


async def answered_at_once(client: TestClient, channel: str, event: dict[str, Any],
                           api: StandIn) -> Recorded:
    """Deliver ``event``: 200 at once, then the one Graph call that answers it."""
    started = time.perf_counter()
    response = await deliver(client, channel, event)
    assert response.status == 200 and await response.json() == {"ok": True}
    assert time.perf_counter() - started < 2.0
    (call,) = await api.wait_for(1)
    assert call.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    return call


async def assert_verification(client: TestClient, channel: str) -> None:
    """The GET handshake: the challenge echoed for the right token, 403 for a wrong one."""
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444"}
    response = await client.get(f"/webhooks/{channel}", params=good)
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == "1158201444"
    for params, status in [({**good, "hub.verify_token": "wrong"}, 403),
                           ({"hub.mode": "subscribe", "hub.challenge": "1"}, 403),
                           ({**good, "hub.verify_token": "verify-me_3f9cé"}, 403),
                           ({**good, "hub.mode": "unsubscribe"}, 400),
                           ({**good, "hub.challenge": "12\x0034"}, 400)]:
        response = await client.get(f"/webhooks/{channel}", params=params)
        assert response.status == status, params
        assert "error" in await response.json()


async def assert_signatures_enforced(client: TestClient, channel: str, event: dict[str, Any],
                                     api: StandIn, *keys: str) -> None:
    """Missing, forged and mismatched signatures get 401, a signed body that is no JSON
    object 400; nothing reaches the bot or the Graph API."""
    body = json.dumps(event).encode()
    cases: list[tuple[bytes, str | None, int, str]] = [
        (body, None, 401, "missing X-Hub-Signature-256"),
        (body, meta_signature(body, "another-apps-secret"), 401, "does not match"),
        (body, meta_signature(body + b" "), 401, "does not match"),
        (body, meta_signature(body).replace("sha256=", "sha1="), 401, "does not match"),
        (body, "sha256=\u00e9", 401, "does not match"),
        (b'{"object": "page", "entry": [', SIGNED, 400, "not valid JSON"),
        (b"\xff\xfe{}", SIGNED, 400, "not UTF-8"),
        (b'{"object": "x\\ud800"}', SIGNED, 400, "binary data"),
        (b"[1, 2]", SIGNED, 400, "must be a JSON object"),
    ]
    for data, signature, status, error in cases:
        response = await deliver(client, channel, data, signature)
        assert response.status == status, error
        assert error in (await response.json())["error"]
    await asyncio.sleep(0.2)
    assert api.requests == []
    await assert_nothing_stored(client, *keys)


def fake_turn(channel: Any, buttons: int, asked: list[str]) -> None:
    """Make the channel's bot answer every message with ``buttons`` choices (and note what
    it was asked)."""
    options = tuple({"title": f"Option number {i} with a long title", "payload": f"pick_{i}"}
                    for i in range(1, buttons + 1))

    async def on_message(incoming: UserMessage) -> BotReply:
        asked.append(incoming.text)
        return BotReply(text="Which card do you mean?", buttons=options, kind="clarify")

    channel.on_message = on_message
