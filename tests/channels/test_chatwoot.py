from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.definition.config import BotDefinition
from bot.definition.dialogue import HandoffSettings
from bot.errors import ChannelError, ConfigError
from channels.registry import CHANNELS, channel_settings
from foundation.messages import BotReply
from foundation.settings import Where

from .chatwoot_support import MESSAGE_CREATED, ChatwootApi, message_event, signed
from .support import Serve, assert_nothing_stored, bearer, session_of, user_texts

TOKEN = "Xj4kQ2bVd9rT7mYzA1sLpE3w"  # the agent bot's access token
URL_TOKEN = "cw-hook_7f3a9d2e41b8c6"
SECRET = "Hh3kT9xQe2WmZ7uV4sNcB8yA"  # the agent bot's webhook secret
KEY = "chatwoot:1:10"  # account 1, conversation 10
AGENT_TOKEN = "agent-token-for-the-desk-1234"


@pytest.fixture(scope="session")
def trained_bot(trained_bot: BotDefinition) -> BotDefinition:
    """The channel tests' bot, with a ``handoff`` section: it can pass people on."""
    config = dataclasses.replace(trained_bot.config,
                                 handoff=HandoffSettings(agent_token=AGENT_TOKEN))
    return dataclasses.replace(trained_bot, config=config)


@pytest.fixture
async def api() -> AsyncIterator[ChatwootApi]:
    stand_in = ChatwootApi(TOKEN)
    await stand_in.start()
    yield stand_in
    await stand_in.close()


def settings(api: ChatwootApi, **extra: Any) -> dict[str, Any]:
    return {"chatwoot": {"base_url": api.url, "api_access_token": TOKEN,
                         "url_token": URL_TOKEN,
                         "retry": {"attempts": 2, "base_delay_s": 0.01}, **extra}}


async def post(client: Any, body: Any, *, token: str | None = URL_TOKEN,
               headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/webhooks/chatwoot", data=data,
                             params={"token": token} if token is not None else None,
                             headers={"Content-Type": "application/json", **(headers or {})})


async def test_a_customer_question_is_answered_through_the_api(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    started = time.perf_counter()
    response = await post(client, message_event(118, "my card has not arrived"))
    assert response.status == 200 and await response.json() == {"ok": True}
    assert time.perf_counter() - started < 2.0  # Chatwoot waits 5 s at most
    (call,) = await api.wait_for(1)
    assert (call.action, call.account, call.conversation) == ("messages", 1, 10)
    assert call.body["message_type"] == "outgoing" and call.body["private"] is False
    assert call.body["content"].startswith("Cards arrive within 5-7 working days")
    assert call.body["content"].endswith("Sources: My card has not arrived yet")
    assert "content_type" not in call.body  # plain text
    assert await user_texts(client, KEY) == ["my card has not arrived"]
    session = await session_of(client, KEY)
    assert session.history[0]["text"] == "my card has not arrived"
    assert api.status[10] == "pending"  # answered, not handed over


async def test_outgoing_private_bot_and_other_events_are_ignored(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    agent = {"id": 1, "name": "John", "email": "john@acme.inc", "type": "user"}
    bot = {"id": 3, "name": "Support bot", "avatar": "", "type": "agent_bot"}
    ignored = [
        message_event(201, "we are on it", message_type="outgoing", sender=agent),
        message_event(202, "note to self", message_type="outgoing", private=True, sender=agent),
        message_event(203, "a private note", private=True),
        message_event(204, "Cards arrive within 5-7 working days", message_type="outgoing",
                      sender=bot),  # the bot's own reply, echoed back
        message_event(205, "Conversation was reopened", message_type=2),  # activity
        message_event(206, "my card has not arrived", message_type=1, sender=agent),
        message_event(207, None, attachments=[{"file_type": "image"}]),  # no text
        message_event(208, "my card has not arrived", status="open"),  # people own it
        message_event(209, "my card has not arrived", status="resolved"),
        message_event(210, "my card has not arrived", event="message_updated"),
        {"event": "conversation_opened", "id": 10, "status": "pending"},
        {"event": "webwidget_triggered", "id": 12, "contact": {"id": 14}},
        {"event": "conversation_typing_on", "conversation": {"id": 10}},
    ]
    for body in ignored:
        response = await post(client, body)
        assert response.status == 200, body
        assert "ignored" in await response.json(), body
    # the documented sample as it is: an incoming "hi" in an open conversation
    response = await post(client, MESSAGE_CREATED)
    assert (await response.json())["ignored"] == "conversation is 'open': people answer it"
    await asyncio.sleep(0.3)
    assert api.calls == []
    await assert_nothing_stored(client, KEY)


async def test_a_redelivered_message_is_answered_once(serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    assert (await post(client, message_event(300, "reset my pin"))).status == 200
    again = await post(client, message_event(300, "reset my pin"))
    assert again.status == 200 and (await again.json())["ignored"] == "duplicate message"
    await api.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(api.calls) == 1 and api.calls[0].body["content"].startswith("Open the app")
    assert await user_texts(client, KEY) == ["reset my pin"]
    # another conversation's message with its own id is a new message
    assert (await post(client, message_event(301, "reset my pin", conversation=11))).status \
        == 200
    (_, other) = await api.wait_for(2)
    assert other.conversation == 11


async def test_asking_for_a_person_opens_the_conversation_and_the_bot_goes_quiet(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    assert (await post(client, message_event(400, "I want to talk to a real person"))).status \
        == 200
    message, toggle = await api.wait_for(2)
    assert message.action == "messages" and message.conversation == 10
    assert message.body["content"] == HandoffSettings().message
    assert toggle.action == "toggle_status" and toggle.conversation == 10
    assert toggle.body == {"status": "open"}
    assert api.status[10] == "open"
    state = (await session_of(client, KEY)).state["handoff"]
    assert state["status"] == "waiting" and state["reason"] == "requested"
    # Chatwoot now sends the customer's messages with the conversation open: people answer
    later = await post(client, message_event(401, "hello? anyone there?",
                                             status=api.status[10]))
    assert (await later.json())["ignored"] == "conversation is 'open': people answer it"
    await asyncio.sleep(0.3)
    assert len(api.calls) == 2
    assert await user_texts(client, KEY) == ["I want to talk to a real person"]


async def test_handing_back_needs_pending_in_chatwoot_and_a_release_in_the_bot(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    await post(client, message_event(450, "I want to talk to a real person"))
    await api.wait_for(2)
    # an agent sets the conversation back to pending in Chatwoot only: the bot still holds
    # it as handed off, so it says so and opens it again
    api.status[10] = "pending"
    await post(client, message_event(451, "my card has not arrived"))
    _, _, waiting, reopened = await api.wait_for(4)
    assert waiting.body["content"] == HandoffSettings().waiting_message
    assert reopened.body == {"status": "open"} and api.status[10] == "open"
    # released in the bot as well (the agent API), and pending: the bot answers again
    released = await client.post("/agent/release", json={"id": KEY},
                                 headers=bearer(AGENT_TOKEN))
    assert released.status == 200, await released.text()
    assert (await released.json())["delivered"] == "pushed"
    back = (await api.wait_for(5))[4]
    assert back.body["content"] == HandoffSettings().returned_message
    api.status[10] = "pending"
    await post(client, message_event(452, "my card has not arrived"))
    answer = (await api.wait_for(6))[5]
    assert answer.body["content"].startswith("Cards arrive within")
    await asyncio.sleep(0.2)
    assert len(api.calls) == 6 and api.status[10] == "pending"


async def test_a_bad_url_token_or_signature_is_refused_storing_nothing(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    for token in (None, "", "cw-hook_7f3a9d2e41b8c7", "é" * 22):
        response = await post(client, message_event(500, "my card has not arrived"),
                              token=token)
        assert response.status == 401
        assert "?token=" in (await response.json())["error"]
    signed_client = await serve(settings(api, url_token=None, secret=SECRET))
    body = json.dumps(message_event(501, "reset my pin")).encode()
    refused = [
        {},  # unsigned (a Chatwoot older than 4.13, or not Chatwoot)
        signed(body, "another-secret-altogether"),
        signed(body, SECRET, timestamp=int(time.time()) - 3600),  # stale
        {**signed(body, SECRET), "X-Chatwoot-Signature": "sha256=" + "0" * 64},
    ]
    for headers in refused:
        response = await post(signed_client, body, token=None, headers=headers)
        assert response.status == 401
        assert "X-Chatwoot-Signature" in (await response.json())["error"]
    await asyncio.sleep(0.2)
    assert api.calls == []
    await assert_nothing_stored(client, KEY)
    await assert_nothing_stored(signed_client, KEY)
    response = await post(signed_client, body, token=None, headers=signed(body, SECRET))
    assert response.status == 200 and await response.json() == {"ok": True}
    (call,) = await api.wait_for(1)
    assert call.body["content"].startswith("Open the app")


async def test_malformed_payloads_are_400_and_huge_ones_413(serve: Serve,
                                                            api: ChatwootApi) -> None:
    client = await serve(settings(api, account_id=1))
    no_account = message_event(600)
    del no_account["account"]
    no_status = message_event(601)
    del no_status["conversation"]["status"]
    cases: list[tuple[Any, int, str]] = [
        (b'{"event": "message_created", "id": ', 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b"\xff\xfe", 400, "not UTF-8"),
        (no_account, 400, "no id 'account.id'"),
        (message_event(602, conversation="ten"), 400, "no id 'conversation.id'"),
        (message_event(-5), 400, "no id 'id'"),
        (message_event(10**30), 400, "no id 'id'"),
        (no_status, 400, "no 'conversation.status'"),
        ({**message_event(603), "account": {"id": 2}}, 403, "account 2"),
        (message_event(604, "x" * 70_000), 413, "too large"),
    ]
    for body, status, text in cases:
        response = await post(client, body)
        assert response.status == status, text
        assert text in (await response.json())["error"], text
    await asyncio.sleep(0.2)
    assert api.calls == []
    await assert_nothing_stored(client, KEY)


async def test_buttons_become_options_and_a_chosen_option_is_answered(
        serve: Serve, api: ChatwootApi) -> None:
    client = await serve(settings(api))
    channel = client.app[CHANNELS]["chatwoot"]
    buttons = ({"title": "Reset my PIN", "payload": "How do I reset my PIN?"},
               {"title": "Card missing", "payload": ""})
    await channel.push("1:10", BotReply(text="What do you need?", buttons=buttons))
    (options,) = api.calls
    assert options.body == {
        "content": "What do you need?", "message_type": "outgoing", "private": False,
        "content_type": "input_select", "content_attributes": {"items": [
            {"title": "Reset my PIN", "value": "How do I reset my PIN?"},
            {"title": "Card missing", "value": "Card missing"}]}}
    # the customer picks one in the web widget: Chatwoot updates the bot's message
    chosen = message_event(
        1001, "What do you need?", event="message_updated", message_type="outgoing",
        content_type="input_select", sender={"id": 3, "name": "Bot", "type": "agent_bot"},
        content_attributes={**options.body["content_attributes"], "submitted_values": [
            {"title": "Reset my PIN", "value": "How do I reset my PIN?"}]})
    assert (await post(client, chosen)).status == 200
    (_, answer) = await api.wait_for(2)
    assert answer.body["content"].startswith("Open the app")
    assert await user_texts(client, KEY) == ["How do I reset my PIN?"]
    again = await post(client, chosen)  # a later update of the same message
    assert (await again.json())["ignored"] == "duplicate message"
    text_only = await serve(settings(api, options=False))
    await text_only.app[CHANNELS]["chatwoot"].push("1:11", BotReply(text="Pick", buttons=buttons))
    assert api.calls[-1].body["content"] == "Pick\n- Reset my PIN\n- Card missing"
    assert "content_type" not in api.calls[-1].body


async def test_api_errors_are_logged_and_do_not_stop_the_channel(
        serve: Serve, api: ChatwootApi, caplog: pytest.LogCaptureFixture) -> None:
    wrong = await serve(settings(api, api_access_token="not-the-bots-token"))
    with caplog.at_level(logging.ERROR, logger="channels"):
        assert (await post(wrong, message_event(700, "reset my pin"))).status == 200
        async with asyncio.timeout(10):
            while "Invalid Access Token" not in caplog.text:
                await asyncio.sleep(0.05)
    assert "chatwoot create message" in caplog.text and "HTTP 401" in caplog.text
    assert TOKEN not in caplog.text
    client = await serve(settings(api))
    api.fail = [503]  # retried, then delivered
    assert (await post(client, message_event(701, "reset my pin"))).status == 200
    (call,) = await api.wait_for(1)
    assert call.body["content"].startswith("Open the app")
    channel = client.app[CHANNELS]["chatwoot"]
    with pytest.raises(ChannelError, match="Resource could not be found"):
        await channel.push("1:99", BotReply(text="hello"))
    with pytest.raises(ChannelError, match="not '<account id>:<conversation id>'"):
        await channel.push("ann@example.com", BotReply(text="hello"))


def test_settings_need_a_way_to_verify_the_webhook() -> None:
    where = Where("bot.yaml", "channels")
    base = {"base_url": "https://chat.acme.example", "api_access_token": TOKEN}
    with pytest.raises(ConfigError, match=r"set 'secret'.*or 'url_token'"):
        channel_settings("chatwoot", base, where)
    with pytest.raises(ConfigError, match="16-256 characters"):
        channel_settings("chatwoot", {**base, "url_token": "short"}, where)
    with pytest.raises(ConfigError, match="http"):
        channel_settings("chatwoot", {**base, "secret": SECRET, "base_url": "chat"}, where)
    built = channel_settings("chatwoot", {**base, "secret": SECRET}, where)
    assert built.secret == SECRET and built.url_token is None and built.options is True
