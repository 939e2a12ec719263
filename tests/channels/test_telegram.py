from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.errors import ChannelError
from channels.delivery import split_text
from channels.registry import CHANNELS
from foundation.messages import BotReply

from .support import Serve, StandIn, assert_nothing_stored, user_texts

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "tg-webhook-secret_42"


def update(update_id: int, text: str | None = "my card has not arrived", *, user: int = 1111111,
           chat: int = 1111111, **extra: Any) -> dict[str, Any]:
    """An Update as Telegram sends it (https://core.telegram.org/bots/api#update)."""
    message: dict[str, Any] = {
        "message_id": 1365,
        "from": {"id": user, "is_bot": False, "first_name": "Test", "last_name": "Lastname",
                 "username": "test_user", "language_code": "en"},
        "chat": {"id": chat, "first_name": "Test", "last_name": "Lastname",
                 "username": "test_user", "type": "private"},
        "date": 1441645532,
        **extra,
    }
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


@pytest.fixture
async def telegram_api() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, {"ok": True, "result": {"message_id": 7}})) as stand_in:
        yield stand_in


def settings(api: StandIn, **extra: Any) -> dict[str, Any]:
    return {"telegram": {"token": TOKEN, "secret_token": SECRET, "api_base": api.url,
                         "retry": {"attempts": 3, "base_delay_s": 0.01}, **extra}}


async def post(client: Any, body: Any, secret: str | None = SECRET) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/webhooks/telegram", data=data, headers=headers)


async def test_update_is_acknowledged_and_answered_with_send_message(
        serve: Serve, telegram_api: StandIn) -> None:
    client = await serve(settings(telegram_api))
    started = time.perf_counter()
    response = await post(client, update(10000, chat=-100200))
    assert response.status == 200 and await response.json() == {"ok": True}
    assert time.perf_counter() - started < 2.0
    (call,) = await telegram_api.wait_for(1)
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.json["chat_id"] == -100200  # the chat, not the user
    assert call.json["text"].startswith("Cards arrive within 5-7 working days")
    assert call.json["text"].endswith("Sources: My card has not arrived yet")
    assert await user_texts(client, "telegram:1111111") == ["my card has not arrived"]


async def test_wrong_secret_bad_json_and_large_bodies_are_rejected_storing_nothing(
        serve: Serve, telegram_api: StandIn) -> None:
    client = await serve(settings(telegram_api))
    cases: list[tuple[Any, str | None, int, str]] = [
        (update(1), None, 401, "X-Telegram-Bot-Api-Secret-Token"),
        (update(2), "wrong-secret", 401, "X-Telegram-Bot-Api-Secret-Token"),
        (b'{"update_id": 3, "message":', SECRET, 400, "not valid JSON"),
        ({"message": {"text": "hi"}}, SECRET, 400, "no integer 'update_id'"),
        ({"update_id": 5, "message": {"text": "hi", "from": {"id": 1}}}, SECRET, 400,
         "no integer 'chat.id'"),
        (update(6, text="x" * 70_000), SECRET, 413, "too large"),
    ]
    for body, secret, status, text in cases:
        response = await post(client, body, secret)
        assert response.status == status, text
        assert text in (await response.json())["error"]
    # acknowledged (so Telegram does not resend) but ignored: no text, edits, unknown kinds
    for body in (update(7, text=None, sticker={"file_id": "x"}),
                 {"update_id": 8, "edited_message": update(8)["message"]},
                 {"update_id": 9, "callback_query": {"id": "1"}}):
        response = await post(client, body)
        assert response.status == 200 and "ignored" in await response.json()
    await asyncio.sleep(0.2)
    assert telegram_api.requests == []
    await assert_nothing_stored(client, "telegram:1111111")


async def test_a_redelivered_update_is_answered_once(serve: Serve,
                                                    telegram_api: StandIn) -> None:
    client = await serve(settings(telegram_api))
    assert (await post(client, update(42, "reset my pin"))).status == 200
    again = await post(client, update(42, "reset my pin"))
    assert again.status == 200 and (await again.json())["ignored"] == "duplicate update"
    await telegram_api.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(telegram_api.requests) == 1
    assert await user_texts(client, "telegram:1111111") == ["reset my pin"]


async def test_send_message_is_retried_on_429_and_5xx(serve: Serve) -> None:
    api = StandIn(default=(200, {"ok": True, "result": {}}), script=[
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0",
               "parameters": {"retry_after": 0}}),
        (502, {"ok": False})])
    await api.start()
    try:
        client = await serve(settings(api))
        assert (await post(client, update(77, "reset my pin"))).status == 200
        calls = await api.wait_for(3)
        assert all(c.json["text"].startswith("Open the app") for c in calls)
    finally:
        await api.close()


async def test_turn_errors_are_told_to_the_user(serve: Serve, telegram_api: StandIn) -> None:
    client = await serve(settings(telegram_api, show_citations=False))
    assert (await post(client, update(5, "   "))).status == 200
    (call,) = await telegram_api.wait_for(1)
    assert call.json["text"] == "Sorry, I couldn't process that: 'message' is empty"


async def test_push_messages_the_user_and_long_texts_are_split(
        serve: Serve, telegram_api: StandIn) -> None:
    client = await serve(settings(telegram_api, show_citations=False))
    channel = client.app[CHANNELS]["telegram"]
    await channel.push("1111111", BotReply(text="word " * 1000, kind="agent"))  # 5000 chars
    calls = telegram_api.requests
    assert len(calls) == 2 and all(c.json["chat_id"] == 1111111 for c in calls)
    assert all(len(c.json["text"]) <= 4096 for c in calls)
    assert " ".join(c.json["text"] for c in calls).split() == ["word"] * 1000
    telegram_api.default = (400, {"ok": False, "description": "Bad Request: chat not found"})
    with pytest.raises(ChannelError, match="chat not found"):
        await channel.push("999", BotReply(text="hello"))


def test_split_text_cuts_at_spaces_within_the_limit() -> None:
    assert split_text("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert split_text("a" * 10, 4) == ["aaaa", "aaaa", "aa"]
    assert split_text("", 10) == [""]
