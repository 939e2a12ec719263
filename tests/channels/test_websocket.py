from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.errors import ChannelError
from channels.registry import CHANNELS
from foundation.messages import BotReply, Citation

from .support import Serve, assert_nothing_stored, user_texts, visitor


async def socket(client: TestClient, token: str | None = None,  # type: ignore[type-arg]
                 **kwargs: Any) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A connection of a new visitor (or of ``token``'s), and its sender."""
    sender = ""
    if token is None:
        token, sender = await visitor(client, "websocket")
    return await client.ws_connect(f"/webhooks/websocket?token={token}", **kwargs), sender


async def turn(ws: aiohttp.ClientWebSocketResponse, sender: str, text: str) -> list[dict[str, Any]]:
    """Send one message; the frames up to and including the reply (or error)."""
    await ws.send_json({"type": "message", "sender": sender, "message": text})
    frames = []
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), 15)
        frames.append(frame)
        if frame["type"] in ("reply", "error"):
            return frames


async def error_for(ws: aiohttp.ClientWebSocketResponse, payload: str | bytes) -> str:
    if isinstance(payload, bytes):
        await ws.send_bytes(payload)
    else:
        await ws.send_str(payload)
    frame = await asyncio.wait_for(ws.receive_json(), 15)
    assert frame["type"] == "error"
    return str(frame["error"])


async def test_streams_typing_deltas_then_the_reply(serve: Serve) -> None:
    client = await serve({"websocket": {}})
    ws, w1 = await socket(client)
    async with ws:
        frames = await turn(ws, w1, "my card has not arrived")
    assert frames[0] == {"type": "typing"}
    deltas = [f["text"] for f in frames if f["type"] == "delta"]
    reply = frames[-1]
    assert deltas and "".join(deltas) == reply["text"]
    assert reply["type"] == "reply" and reply["recipient_id"] == w1
    assert reply["citations"][0]["passage_id"] == "card-not-arrived"
    assert reply["kind"] == "faq" and reply["handoff"] is False


async def test_bad_frames_get_errors_and_the_connection_stays_open(serve: Serve) -> None:
    client = await serve({"websocket": {}}, max_body_bytes=2048)
    ws, bad = await socket(client)
    async with ws:
        assert "not valid JSON" in await error_for(ws, '{"type": "message",')
        assert "must be a JSON object" in await error_for(ws, "[1, 2]")
        assert "unknown frame type 'shout'" in await error_for(ws, '{"type": "shout"}')
        assert "'message' is required" in await error_for(ws, '{"type": "message"}')
        assert "binary frames are not supported" in await error_for(ws, b"\x00\x01")
        assert "message too large (limit 2048 bytes)" in await error_for(
            ws, json.dumps({"type": "message", "message": "a" * 3000}))
        frames = await turn(ws, bad, "\u0000")
        assert frames[-1] == {"type": "error", "error": "'message' contains binary data"}
        frames = await turn(ws, bad, "   ")
        assert frames[-1]["error"] == "'message' is empty"
        assert "belongs to another sender" in await error_for(
            ws, '{"type": "message", "sender": "someone-else", "message": "hi"}')
        assert not ws.closed
        await assert_nothing_stored(client, f"websocket:{bad}", "websocket:someone-else")
        frames = await turn(ws, bad, "how do I reset my PIN?")  # still usable
        assert frames[-1]["type"] == "reply" and "Reset PIN" in frames[-1]["text"]
    assert await user_texts(client, f"websocket:{bad}") == ["how do I reset my PIN?"]


async def test_a_frame_far_over_the_limit_closes_with_message_too_big(serve: Serve) -> None:
    client = await serve({"websocket": {}}, max_body_bytes=1024)
    ws, _ = await socket(client)
    async with ws:
        await ws.send_str("x" * 5000)
        message = await asyncio.wait_for(ws.receive(), 15)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await assert_nothing_stored(client)


async def test_reconnecting_with_the_same_token_continues_the_session(serve: Serve) -> None:
    client = await serve({"websocket": {}})
    token, same = await visitor(client, "websocket")
    async with (await socket(client, token))[0] as ws:
        await turn(ws, same, "reset my pin")
    async with (await socket(client, token))[0] as ws:
        await turn(ws, same, "how long does a transfer take")
    assert await user_texts(client, f"websocket:{same}") == \
        ["reset my pin", "how long does a transfer take"]


async def test_a_socket_needs_a_valid_session_token_and_cannot_choose_its_sender(
        serve: Serve) -> None:
    client = await serve({"websocket": {}, "webchat": {}})
    for query in ("", "?token=forged.0000", "?token="):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"/webhooks/websocket{query}")
        assert refused.value.status == 401
    webchat_token, _ = await visitor(client, "webchat")  # a token of another channel
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/webhooks/websocket?token={webchat_token}")
    assert refused.value.status == 401
    victim_token, victim = await visitor(client, "websocket")
    async with (await socket(client, victim_token))[0] as ws:
        await turn(ws, victim, "reset my pin")
    ws, mallory = await socket(client)
    async with ws:
        frames = await turn(ws, victim, "what did I ask before?")
        assert "belongs to another sender" in frames[-1]["error"]
        assert (await turn(ws, mallory, "reset my pin"))[-1]["type"] == "reply"
    assert await user_texts(client, f"websocket:{victim}") == ["reset my pin"]


async def test_messages_of_one_connection_are_answered_in_order(serve: Serve) -> None:
    client = await serve({"websocket": {}})
    questions = ["reset my pin", "how long does a transfer take", "my card has not arrived"]
    ws, o1 = await socket(client)
    async with ws:
        for question in questions:  # all sent before the first reply
            await ws.send_json({"type": "message", "message": question})
        replies: list[str] = []
        while len(replies) < 3:
            frame = await asyncio.wait_for(ws.receive_json(), 15)
            if frame["type"] == "reply":
                replies.append(frame["citations"][0]["passage_id"])
    assert replies == ["reset-pin", "transfer-time", "card-not-arrived"]
    assert await user_texts(client, f"websocket:{o1}") == questions


async def test_push_reaches_every_open_connection_of_the_sender(serve: Serve) -> None:
    client = await serve({"websocket": {}})
    channel = client.app[CHANNELS]["websocket"]
    reply = BotReply(text="Hi, this is Sam from support.", kind="agent",
                     citations=(Citation("reset-pin", "faq/main.yaml", "PIN", 1.0),))
    token, p1 = await visitor(client, "websocket")
    with pytest.raises(ChannelError, match=f"'{p1}' is not connected"):
        await channel.push(p1, reply)
    (one, _), (two, _), (other, p2) = [await socket(client, token), await socket(client, token),
                                       await socket(client)]
    async with one, two, other:
        for ws, sender in ((one, p1), (two, p1), (other, p2)):
            await ws.send_json({"type": "hello"})
            assert await ws.receive_json() == {"type": "ready", "sender": sender}
        await channel.push(p1, reply)
        for ws in (one, two):
            frame = await asyncio.wait_for(ws.receive_json(), 5)
            assert frame["type"] == "reply" and frame["text"] == reply.text
            assert frame["kind"] == "agent" and frame["recipient_id"] == p1
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(other.receive_json(), 0.3)
    await asyncio.sleep(0.1)
    with pytest.raises(ChannelError):
        await channel.push(p1, reply)  # both closed: no longer connected


async def test_origin_is_checked_on_the_handshake(serve: Serve) -> None:
    client: TestClient = await serve({"websocket": {}},
                                     cors_origins=("https://shop.example.com",))
    token, o2 = await visitor(client, "websocket")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await socket(client, token, headers={"Origin": "https://evil.example.net"})
    assert refused.value.status == 403
    async with (await socket(client, token,
                             headers={"Origin": "https://shop.example.com"}))[0] as ws:
        frames = await turn(ws, o2, "reset my pin")
        assert frames[-1]["type"] == "reply"
    host = f"http://{client.server.host}:{client.server.port}"
    async with (await socket(client, token, headers={"Origin": host}))[0] as ws:
        assert (await turn(ws, o2, "reset my pin"))[-1]["type"] == "reply"


async def test_server_shutdown_closes_open_connections(serve: Serve) -> None:
    client = await serve({"websocket": {}})
    ws, _ = await socket(client)
    await ws.send_json({"type": "hello"})
    await ws.receive_json()
    started = time.perf_counter()
    await asyncio.wait_for(client.close(), 10)
    assert time.perf_counter() - started < 5  # not held up by the open socket
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()
