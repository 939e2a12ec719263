"""The WhatsApp Cloud API channel against a loopback stand-in for graph.facebook.com, fed
the ``messages`` webhooks Meta documents (developers.facebook.com/documentation/
business-messaging/whatsapp/webhooks/reference/messages: text, interactive, image,
sticker, reaction, status), field for field."""

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

PHONE_ID = "106540352242922"
USER = "16505551234"
KEY = f"whatsapp:{USER}"
MID = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
SENT = {"messaging_product": "whatsapp", "contacts": [{"input": USER, "wa_id": USER}],
        "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjU0MzIxMEFCQ0RFRgA="}]}


def webhook(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None,
            phone_number_id: str = PHONE_ID) -> dict[str, Any]:
    """A ``messages`` webhook as Meta sends it."""
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550783881",
                                          "phone_number_id": phone_number_id}}
    if messages:
        value["contacts"] = [{"profile": {"name": "Sheena Nelson"}, "wa_id": USER}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value,
                                                             "field": "messages"}]}]}


def message(kind: str, content: Any, mid: str = MID, **extra: Any) -> dict[str, Any]:
    return {"from": USER, "id": mid, "timestamp": "1749416383", "type": kind, kind: content,
            **extra}


def text(body: str, mid: str = "wamid.text1") -> dict[str, Any]:
    return message("text", {"body": body}, mid)


def status(state: str, mid: str = "wamid.out1") -> dict[str, Any]:
    return {"id": mid, "status": state, "timestamp": "1749416400", "recipient_id": USER,
            "conversation": {"id": "4d6c6a2b1c2e9f2a4b0c1d3e5f7a9b1c",
                             "expiration_timestamp": "1749502800",
                             "origin": {"type": "service"}},
            "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}


@pytest.fixture
async def graph() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, SENT)) as stand_in:
        yield stand_in


def settings(api: StandIn, **extra: Any) -> dict[str, Any]:
    return {"whatsapp": graph_settings(api, phone_number_id=PHONE_ID, **extra)}


TEMPLATE = {"name": "agent_reply", "language": "en_US"}


async def test_a_text_message_is_acknowledged_at_once_and_answered(serve: Serve,
                                                                   graph: StandIn) -> None:
    client = await serve(settings(graph))
    event = webhook(text("my card has not arrived"))
    call = await answered_at_once(client, "whatsapp", event, graph)
    assert call.path == f"/{PHONE_ID}/messages"
    sent = call.json
    assert {k: sent[k] for k in ("messaging_product", "recipient_type", "to", "type")} == \
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": USER,
         "type": "text"}
    assert sent["text"]["body"].startswith("Cards arrive within 5-7 working days")
    assert sent["text"]["body"].endswith("Sources: My card has not arrived yet")
    assert await user_texts(client, KEY) == ["my card has not arrived"]


async def test_verification_and_signatures(serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph))
    await assert_verification(client, "whatsapp")
    await assert_signatures_enforced(client, "whatsapp", webhook(text("reset my pin")), graph,
                                     KEY)
    for bad in ({"object": "whatsapp_business_account", "entry": {"id": "1"}},
                webhook(message("text", {"body": "hi"}, mid="")),
                webhook({"id": "wamid.x", "type": "text", "text": {"body": "hi"}}),
                webhook(message("text", {"body": "hi"}, **{"from": "1650\n5551234"}))):
        response = await deliver(client, "whatsapp", bad)
        assert response.status == 400, bad
    await asyncio.sleep(0.2)
    assert graph.requests == []


async def test_a_message_delivered_twice_is_answered_once(serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph))
    for _ in range(2):
        response = await deliver(client, "whatsapp", webhook(text("reset my pin", "wamid.dup")))
        assert response.status == 200
    await graph.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(graph.requests) == 1
    assert graph.requests[0].json["text"]["body"].startswith("Open the app")
    assert await user_texts(client, KEY) == ["reset my pin"]


async def test_pictures_stickers_and_reactions_get_the_polite_reply(serve: Serve,
                                                                   graph: StandIn) -> None:
    client = await serve(settings(graph, unsupported_text="I can read text only, sorry!"))
    unreadable = [
        message("image", {"caption": "CAPTION", "mime_type": "image/jpeg",
                          "sha256": "IMAGE_HASH", "id": "1013859600285441"}, "wamid.img"),
        message("sticker", {"mime_type": "image/webp", "sha256": "HASH",
                            "id": "1013859600285442"}, "wamid.sticker"),
        message("reaction", {"message_id": "wamid.out1", "emoji": "\U0001f600"}, "wamid.react"),
        message("location", {"latitude": 52.37, "longitude": 4.89, "name": "Office",
                             "address": "Main St 1"}, "wamid.loc"),
        {"from": USER, "id": "wamid.unknown", "timestamp": "1749416383",
         "errors": [{"code": 131051, "details": "Message type is not currently supported",
                     "title": "Unsupported message type"}], "type": "unknown"},
    ]
    response = await deliver(client, "whatsapp", webhook(*unreadable))
    assert response.status == 200
    calls = await graph.wait_for(len(unreadable))
    assert [c.json["text"]["body"] for c in calls] == ["I can read text only, sorry!"] * 5
    assert all(c.json["to"] == USER for c in calls)
    # a notice that the number changed, a reaction taken back: nothing to answer
    system = {"from": USER, "id": "wamid.sys", "timestamp": "1749416383", "type": "system",
              "system": {"body": "User A changed from 1 to 2", "wa_id": "2",
                         "type": "user_changed_number"}}
    unreact = message("reaction", {"message_id": "wamid.out1", "emoji": ""}, "wamid.unreact")
    assert (await deliver(client, "whatsapp", webhook(system, unreact))).status == 200
    await asyncio.sleep(0.2)
    assert len(graph.requests) == 5
    await assert_nothing_stored(client, KEY)


async def test_status_webhooks_are_recorded_and_not_answered(serve: Serve,
                                                             graph: StandIn) -> None:
    client = await serve(settings(graph))
    channel = client.app[CHANNELS]["whatsapp"]
    for state in ("sent", "delivered", "read"):
        response = await deliver(client, "whatsapp", webhook(statuses=[status(state)]))
        assert response.status == 200
    failed = {**status("failed", "wamid.out2"), "errors": [
        {"code": 131047, "title": "Re-engagement message",
         "message": "Re-engagement message", "error_data": {
             "details": "Message failed to send because more than 24 hours have passed "
                        "since the customer last replied to this number."}}]}
    failed.pop("conversation")
    failed.pop("pricing")
    assert (await deliver(client, "whatsapp", webhook(statuses=[failed]))).status == 200
    assert channel.statuses == {"wamid.out1": "read", "wamid.out2": "failed"}
    assert channel.status_counts == {"sent": 1, "delivered": 1, "read": 1, "failed": 1}
    await asyncio.sleep(0.2)
    assert graph.requests == []
    await assert_nothing_stored(client, KEY)


async def test_events_for_another_phone_number_are_ignored(serve: Serve,
                                                           graph: StandIn) -> None:
    client = await serve(settings(graph))
    event = webhook(text("reset my pin"), phone_number_id="999999999999")
    assert (await deliver(client, "whatsapp", event)).status == 200
    await asyncio.sleep(0.2)
    assert graph.requests == []


async def test_buttons_become_interactive_messages_and_taps_are_read_as_text(
        serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph, show_citations=False))
    channel = client.app[CHANNELS]["whatsapp"]
    asked: list[str] = []
    fake_turn(channel, 2, asked)
    await deliver(client, "whatsapp", webhook(text("my card", "wamid.b1")))
    (call,) = await graph.wait_for(1)
    assert call.json["type"] == "interactive"
    assert call.json["interactive"] == {
        "type": "button", "body": {"text": "Which card do you mean?"},
        "action": {"buttons": [
            {"type": "reply", "reply": {"id": "pick_1", "title": "Option number 1 with"}},
            {"type": "reply", "reply": {"id": "pick_2", "title": "Option number 2 with"}}]}}
    tapped = message("interactive", {"button_reply": {"id": "pick_2",
                                                      "title": "Option number 2 with"},
                                     "type": "button_reply"}, "wamid.b2",
                     context={"from": "15550783881", "id": "wamid.out1"})
    await deliver(client, "whatsapp", webhook(tapped))
    await graph.wait_for(2)
    fake_turn(channel, 12, asked)
    chosen = message("interactive", {"list_reply": {"id": "pick_11", "title": "Option",
                                                    "description": "list_reply_description"},
                                     "type": "list_reply"}, "wamid.b3")
    await deliver(client, "whatsapp", webhook(chosen))
    calls = await graph.wait_for(3)
    assert asked == ["my card", "pick_2", "pick_11"]
    listed = calls[2].json["interactive"]
    assert listed["type"] == "list" and listed["action"]["button"] == "Choose"
    rows = listed["action"]["sections"][0]["rows"]
    assert len(rows) == 10 and rows[0] == {"id": "pick_1", "title": "Option number 1 with a l"}


async def test_agent_replies_are_free_text_inside_the_window_and_a_template_after_it(
        serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph, template=TEMPLATE, show_citations=False))
    channel = client.app[CHANNELS]["whatsapp"]
    await deliver(client, "whatsapp", webhook(text("reset my pin", "wamid.w1")))
    await graph.wait_for(1)
    agent = BotReply(text="Hi, this is Anna from support.\nI have reset it.", kind="agent")
    assert await push_reply(client.app, "whatsapp", USER, agent)  # the agent desk's path
    assert graph.requests[1].json["text"] == {"body": agent.text}
    later = time.time() + 24 * 3600 + 60
    channel.clock = lambda: later
    assert await push_reply(client.app, "whatsapp", USER, agent)
    assert await push_reply(client.app, "whatsapp", "31612345678", agent)  # never wrote
    for call, to in zip(graph.requests[2:], (USER, "31612345678"), strict=True):
        assert call.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                             "to": to, "type": "template",
                             "template": {"name": "agent_reply",
                                          "language": {"code": "en_US"}}}
    # the person writes again: the window reopens
    await deliver(client, "whatsapp", webhook(text("thanks", "wamid.w2")))
    await graph.wait_for(5)
    await channel.push(USER, agent)
    assert graph.requests[5].json["type"] == "text"


async def test_the_template_can_carry_the_message_and_is_required_outside_the_window(
        serve: Serve, graph: StandIn) -> None:
    client = await serve(settings(graph, template={**TEMPLATE, "text_parameter": True}))
    await client.app[CHANNELS]["whatsapp"].push(USER, BotReply(text="Your card\nis on its way"))
    assert graph.requests[0].json["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Your card is on its way"}]}]
    client = await serve(settings(graph))
    with pytest.raises(ChannelError, match="24 hours"):
        await client.app[CHANNELS]["whatsapp"].push(USER, BotReply(text="hello"))
    graph.default = (400, {"error": {"message": "(#131030) Recipient phone number not in "
                                                "allowed list", "code": 131030}})
    client = await serve(settings(graph, template=TEMPLATE))
    with pytest.raises(ChannelError, match="not in allowed list"):
        await client.app[CHANNELS]["whatsapp"].push(USER, BotReply(text="hello"))


async def test_graph_calls_are_retried_on_429_and_5xx(serve: Serve) -> None:
    api = StandIn(default=(200, SENT), script=[
        (429, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}),
        (503, {"error": {"message": "Service temporarily unavailable", "code": 2}})])
    await api.start()
    try:
        client = await serve(settings(api))
        assert (await deliver(client, "whatsapp", webhook(text("reset my pin")))).status == 200
        calls = await api.wait_for(3)
        assert all(c.json["text"]["body"].startswith("Open the app") for c in calls)
    finally:
        await api.close()


def test_registered_and_refused_without_the_app_secret(make_bot: MakeBot) -> None:
    assert channel_class("whatsapp").name == "whatsapp"
    yaml = ("name: b\nchannels:\n  whatsapp: {verify_token: v, access_token: t, "
            "phone_number_id: '1'}\n")
    with pytest.raises(ConfigError, match=r"channels.whatsapp.app_secret: required"):
        load_bot(make_bot(bot_yaml=yaml, files={}))
    yaml = yaml.replace("verify_token", "app_secret: s, template: {name: Bad-Name, "
                        "language: en}, verify_token")
    with pytest.raises(ConfigError, match=r"channels.whatsapp.template.name: must be"):
        load_bot(make_bot(bot_yaml=yaml, files={}))
