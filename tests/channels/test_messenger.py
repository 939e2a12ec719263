"""The Messenger and Instagram channels against a loopback stand-in for graph.facebook.com,
fed the webhook events Meta documents (developers.facebook.com/documentation/
business-messaging/messenger-platform/webhooks/webhook-events: messages, message_echoes,
messaging_postbacks, message_reactions, message_reads; Instagram Platform webhook
examples), field for field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.definition.loader import load_bot
from bot.errors import ChannelError, ConfigError
from bot.server.app import push_reply
from channels.registry import CHANNELS, channel_class
from foundation.messages import BotReply

from ..conftest import MakeBot
from .meta_support import (
    answered_at_once,
    assert_signatures_enforced,
    assert_verification,
    deliver,
    fake_turn,
    graph_settings,
)
from .support import Serve, StandIn, assert_nothing_stored, user_texts

PAGE_ID = "104589102385938"
PSID = "5843915298945637"
IG_ID = "17841405822304914"
IGSID = "6912093488843117"
MID = "mid.1457764197618:41d102a3e1ae206a38"
SENT = {"recipient_id": PSID, "message_id": "m_AG5Hz2Uq7tuwNEh"}  # the Send API's answer


def webhook(*events: dict[str, Any], kind: str = "page", owner: str = PAGE_ID) -> dict[str, Any]:
    """A messaging webhook: ``object: page`` (Messenger) or ``instagram``."""
    return {"object": kind, "entry": [{"id": owner, "time": 1458692752478,
                                       "messaging": list(events)}]}


def event(sender: str = PSID, owner: str = PAGE_ID, **content: Any) -> dict[str, Any]:
    return {"sender": {"id": sender}, "recipient": {"id": owner},
            "timestamp": 1458692752478, **content}


def text(body: str, mid: str = MID, **extra: Any) -> dict[str, Any]:
    return event(message={"mid": mid, "text": body, **extra})


@pytest.fixture
async def graph() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, SENT)) as stand_in:
        yield stand_in


def settings(api: StandIn, **extra: Any) -> dict[str, Any]:
    return {"messenger": graph_settings(api, **extra), "instagram": graph_settings(api, **extra)}


async def test_a_messenger_message_is_answered_with_a_response(serve: Serve,
                                                              graph: StandIn) -> None:
    client = await serve(settings(graph))
    event = webhook(text("my card has not arrived"))
    call = await answered_at_once(client, "messenger", event, graph)
    assert call.path == "/me/messages"
    assert call.json["recipient"] == {"id": PSID}
    assert call.json["messaging_type"] == "RESPONSE" and "tag" not in call.json
    assert call.json["message"]["text"].startswith("Cards arrive within 5-7 working days")
    assert "quick_replies" not in call.json["message"]
    assert await user_texts(client, f"messenger:{PSID}") == ["my card has not arrived"]


async def test_an_instagram_message_is_answered_and_echoes_are_not(serve: Serve,
                                                                  graph: StandIn) -> None:
    client = await serve(settings(graph))
    dm = event(IGSID, IG_ID, message={"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx",
                                      "text": "how do I reset my PIN?"})
    echo = event(IG_ID, IGSID, message={"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQy",
                                        "text": "Hello!", "is_echo": True})
    response = await deliver(client, "instagram", webhook(echo, dm, kind="instagram",
                                                          owner=IG_ID))
    assert response.status == 200
    (call,) = await graph.wait_for(1)
    assert call.json["recipient"] == {"id": IGSID}
    assert call.json["message"]["text"].startswith("Open the app")
    # an Instagram event posted to the Messenger webhook (or the reverse) is not answered
    other = webhook(text("reset my pin", "m_other"), kind="instagram")
    assert (await deliver(client, "messenger", other)).status == 200
    await asyncio.sleep(0.2)
    assert len(graph.requests) == 1
    assert await user_texts(client, f"instagram:{IGSID}") == ["how do I reset my PIN?"]


@pytest.mark.parametrize("channel", ["messenger", "instagram"])
async def test_verification_and_signatures(serve: Serve, graph: StandIn, channel: str) -> None:
    client = await serve(settings(graph))
    await assert_verification(client, channel)
    kind = "page" if channel == "messenger" else "instagram"
    await assert_signatures_enforced(client, channel, webhook(text("hi"), kind=kind), graph,
                                     f"{channel}:{PSID}")
    for bad in (webhook(event(message={"text": "no mid"}), kind=kind),
                webhook(event(sender="", message={"mid": "m_1", "text": "hi"}), kind=kind),
                {"object": kind, "entry": [{"id": PAGE_ID, "messaging": "hi"}]}):
        assert (await deliver(client, channel, bad)).status == 400, bad


async def test_a_message_delivered_twice_is_answered_once(serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph))
    for _ in range(2):
        assert (await deliver(client, "messenger", webhook(text("reset my pin")))).status == 200
    await graph.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(graph.requests) == 1
    assert await user_texts(client, f"messenger:{PSID}") == ["reset my pin"]


async def test_quick_replies_and_postbacks_are_read_as_their_payload(serve: Serve,
                                                                     graph: StandIn) -> None:
    client = await serve(settings(graph, show_citations=False))
    tapped = text("Reset PIN", "m_quick", quick_reply={"payload": "How do I reset my PIN?"})
    await deliver(client, "messenger", webhook(tapped))
    await graph.wait_for(1)
    postback = event(postback={"mid": "m_MESSAGE-ID", "title": "Where is my card?",
                               "payload": "where is my card"})
    await deliver(client, "messenger", webhook(postback))
    calls = await graph.wait_for(2)
    assert calls[0].json["message"]["text"].startswith("Open the app")
    assert calls[1].json["message"]["text"].startswith("Cards arrive within")
    assert await user_texts(client, f"messenger:{PSID}") == ["How do I reset my PIN?",
                                                             "where is my card"]


async def test_attachments_and_other_reactions_get_the_polite_reply_and_the_rest_is_ignored(
        serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph))
    picture = event(message={"mid": "m_img", "attachments": [
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1/a.png"}}]})
    sticker = event(message={"mid": "m_sticker", "sticker_id": 369239263222822,
                             "attachments": [{"type": "image", "payload": {
                                 "url": "https://scontent.xx.fbcdn.net/v/t39/s.png",
                                 "sticker_id": 369239263222822}}]})
    reaction = event(reaction={"reaction": "wow", "emoji": "\U0001f62e", "action": "react",
                               "mid": "m_replied_to"})  # not a rating (test_reactions.py)
    ignored = [
        event(PAGE_ID, PSID, message={"is_echo": True, "app_id": 1517776481860111,
                                      "metadata": "<DEVELOPER_DEFINED_METADATA_STRING>",
                                      "mid": "m_echo", "text": "from the page"}),
        event(read={"watermark": 1458668856253}),
        event(delivery={"mids": ["mid.1458668856218:ed81099e15d3f4f233"],
                        "watermark": 1458668856253}),
        event(reaction={"reaction": "love", "emoji": "\u2764\ufe0f", "action": "unreact",
                        "mid": "m_replied_to"}),
        event(message={"mid": "m_gone", "is_deleted": True}),
        {"sender": {"user_ref": "USER-REF-ID"}, "recipient": {"id": PAGE_ID},
         "timestamp": "1527459824", "postback": {"mid": "m_guest", "payload": "hi"}},
    ]
    response = await deliver(client, "messenger", webhook(picture, *ignored, sticker, reaction))
    assert response.status == 200
    calls = await graph.wait_for(3)
    await asyncio.sleep(0.2)
    assert len(graph.requests) == 3
    assert [c.json["message"]["text"] for c in calls] == [
        "Sorry, I can only read text messages. Please type your question."] * 3
    await assert_nothing_stored(client, f"messenger:{PSID}")


async def test_buttons_become_quick_replies(serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph))
    asked: list[str] = []
    fake_turn(client.app[CHANNELS]["messenger"], 15, asked)
    await deliver(client, "messenger", webhook(text("my card")))
    (call,) = await graph.wait_for(1)
    message = call.json["message"]
    assert message["text"] == "Which card do you mean?"
    assert len(message["quick_replies"]) == 13
    assert message["quick_replies"][0] == {"content_type": "text",
                                           "title": "Option number 1 with",
                                           "payload": "pick_1"}


async def test_agent_pushes_after_a_day_carry_the_human_agent_tag_for_seven_days(
        serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph, show_citations=False))
    channel = client.app[CHANNELS]["messenger"]
    await deliver(client, "messenger", webhook(text("reset my pin")))
    await graph.wait_for(1)
    agent = BotReply(text="Hi, Anna here. " + "word " * 500, kind="agent",
                     buttons=({"title": "Thanks", "payload": "thanks"},))
    assert await push_reply(client.app, "messenger", PSID, agent)  # the agent desk's path
    inside = graph.requests[1:]
    assert len(inside) == 2  # 2500+ characters: two messages, the quick reply on the last
    assert all(c.json["messaging_type"] == "RESPONSE" and "tag" not in c.json for c in inside)
    assert "quick_replies" not in inside[0].json["message"]
    assert inside[1].json["message"]["quick_replies"][0]["payload"] == "thanks"
    start = time.time()
    channel.clock = lambda: start + 25 * 3600
    await channel.push(PSID, BotReply(text="Are you still there?", kind="agent"))
    await channel.push("1234567890123456", BotReply(text="Hello", kind="agent"))  # never wrote
    for call, to in zip(graph.requests[3:], (PSID, "1234567890123456"), strict=True):
        assert call.json["recipient"] == {"id": to}
        assert call.json["messaging_type"] == "MESSAGE_TAG" and call.json["tag"] == "HUMAN_AGENT"
    channel.clock = lambda: start + 8 * 86400
    with pytest.raises(ChannelError, match="7-day human-agent window"):
        await channel.push(PSID, BotReply(text="Too late", kind="agent"))
    assert len(graph.requests) == 5


def test_registered_and_refused_without_the_app_secret(make_bot: MakeBot) -> None:
    assert channel_class("messenger").name == "messenger"
    assert channel_class("instagram").name == "instagram"
    for name in ("messenger", "instagram"):
        yaml = f"name: b\nchannels:\n  {name}: {{verify_token: v, access_token: t}}\n"
        with pytest.raises(ConfigError, match=rf"channels.{name}.app_secret: required"):
            load_bot(make_bot(bot_yaml=yaml, files={}))
