"""Reactions as feedback on every chat channel that has them: a 👍 or 👎 on one of the bot's
messages is recorded as a rating of that reply and not answered; other reactions are not
ratings. Payloads are the providers' documented reaction events, field for field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from foundation.feedback import rating_of

from .meta_support import deliver
from .support import Serve, StandIn, all_events, user_texts
from .test_messenger import PSID
from .test_messenger import SENT as MESSENGER_SENT
from .test_messenger import event as messenger_event
from .test_messenger import settings as messenger_settings
from .test_messenger import text as messenger_text
from .test_messenger import webhook as messenger_webhook
from .test_slack import event as slack_event
from .test_slack import post as slack_post
from .test_slack import settings as slack_settings
from .test_slack import slack_api  # noqa: F401  (fixture)
from .test_teams import BotFramework, bf  # noqa: F401  (fixture)
from .test_teams import message as teams_message
from .test_teams import post as teams_post
from .test_teams import settings as teams_settings
from .test_telegram import post as telegram_post
from .test_telegram import settings as telegram_settings
from .test_telegram import telegram_api  # noqa: F401  (fixture)
from .test_telegram import update as telegram_update
from .test_whatsapp import SENT, USER, message, settings, text, webhook


@pytest.fixture
async def graph() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, SENT)) as stand_in:
        yield stand_in


@pytest.fixture
async def messenger_graph() -> AsyncIterator[StandIn]:
    async with StandIn(default=(200, MESSENGER_SENT)) as stand_in:
        yield stand_in


PIN = "Open the app"  # the start of the test bot's answers
CARD = "Cards arrive within 5-7 working days"


async def ratings(client: TestClient) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    return [e["data"] for e in await all_events(client) if e["kind"] == "feedback"]


def rated(data: dict[str, Any]) -> str:
    """The start of the reply a rating is about."""
    assert data["messages"][-1]["role"] == "assistant"
    return str(data["messages"][-1]["content"])


async def settled(api: StandIn, count: int) -> None:
    """``count`` calls have reached the provider and no more come."""
    await api.wait_for(count)
    await asyncio.sleep(0.3)
    assert len(api.requests) == count


def test_which_emoji_rate() -> None:
    assert [rating_of(e) for e in ("👍", "👍🏿", "❤️", "👎🏼", "😡")] == \
        ["up", "up", "up", "down", "down"]
    assert [rating_of(e) for e in ("😀", "😂", "🙏", "", "👍👍")] == [None] * 5


async def test_whatsapp_a_reaction_rates_the_message_it_is_on(serve: Serve,
                                                              graph: StandIn) -> None:
    sent = [{"messaging_product": "whatsapp", "messages": [{"id": f"wamid.OUT{i}"}]}
            for i in (1, 2, 3)]
    graph.script = [(200, body) for body in sent]
    client = await serve(settings(graph))
    await deliver(client, "whatsapp", webhook(text("reset my pin", "wamid.in1")))
    await graph.wait_for(1)
    await deliver(client, "whatsapp", webhook(text("my card has not arrived", "wamid.in2")))
    await settled(graph, 2)
    on_first = message("reaction", {"message_id": "wamid.OUT1", "emoji": "👎🏽"}, "wamid.r1")
    on_second = message("reaction", {"message_id": "wamid.OUT2", "emoji": "👍"}, "wamid.r2")
    for reaction in (on_first, on_second, on_second):  # the last one is a redelivery
        assert (await deliver(client, "whatsapp", webhook(reaction))).status == 200
    await asyncio.sleep(0.3)
    assert len(graph.requests) == 2  # ratings are not answered
    down, up = await ratings(client)
    assert down["rating"] == "down" and rated(down).startswith(PIN)
    assert down["source"] == "reaction" and down["reply_index"] == -2
    assert up["rating"] == "up" and rated(up).startswith(CARD)
    # a reaction that is no rating gets the polite reply; one on a message this process did
    # not send (a restart) rates the last reply
    laugh = message("reaction", {"message_id": "wamid.OUT2", "emoji": "😂"}, "wamid.r3")
    unknown = message("reaction", {"message_id": "wamid.before", "emoji": "👎"}, "wamid.r4")
    await deliver(client, "whatsapp", webhook(laugh, unknown))
    await settled(graph, 3)
    assert graph.requests[2].json["text"]["body"].startswith("Sorry, I can only read text")
    assert rated((await ratings(client))[-1]).startswith(CARD)
    assert await user_texts(client, f"whatsapp:{USER}") == ["reset my pin",
                                                            "my card has not arrived"]


async def test_messenger_a_like_rates_the_reply_and_a_reaction_before_any_reply_is_ignored(
        serve: Serve, messenger_graph: StandIn) -> None:
    client = await serve(messenger_settings(messenger_graph))
    love = messenger_event(reaction={"reaction": "love", "emoji": "\u2764\ufe0f",
                                     "action": "react", "mid": "m_AG5Hz2Uq7tuwNEh"})
    await deliver(client, "messenger", messenger_webhook(love))  # nothing to rate yet
    await asyncio.sleep(0.3)
    assert messenger_graph.requests == [] and await ratings(client) == []
    await deliver(client, "messenger", messenger_webhook(messenger_text("reset my pin")))
    await settled(messenger_graph, 1)
    dislike = messenger_event(reaction={"reaction": "dislike", "emoji": "\U0001f44e",
                                        "action": "react", "mid": "m_AG5Hz2Uq7tuwNEh"})
    await deliver(client, "messenger", messenger_webhook(dislike))
    await asyncio.sleep(0.3)
    assert len(messenger_graph.requests) == 1
    (down,) = await ratings(client)
    assert down["rating"] == "down" and rated(down).startswith(PIN)
    assert await user_texts(client, f"messenger:{PSID}") == ["reset my pin"]


def slack_reaction(name: str, event_id: str, item_user: str = "U0BOT",
                   ts: str = "1.2") -> dict[str, Any]:
    """A ``reaction_added`` event (api.slack.com/events/reaction_added)."""
    payload = slack_event(event_id=event_id)
    payload["event"] = {"type": "reaction_added", "user": "U123ABC456", "reaction": name,
                        "item_user": item_user,
                        "item": {"type": "message", "channel": "D123ABC456", "ts": ts},
                        "event_ts": "1360782804.083113"}
    return payload


async def test_slack_a_thumbs_on_the_apps_message_rates_it(serve: Serve,
                                                           slack_api: StandIn) -> None:  # noqa: F811
    client = await serve(slack_settings(slack_api))
    await slack_post(client, slack_event("reset my pin", event_id="Ev1"))
    await settled(slack_api, 1)
    for payload in (slack_reaction("+1::skin-tone-3", "Ev2"),
                    slack_reaction("thumbsdown", "Ev3", item_user="U999PERSON"),  # not ours
                    slack_reaction("tada", "Ev4")):
        assert (await slack_post(client, payload)).status == 200
    await asyncio.sleep(0.3)
    assert len(slack_api.requests) == 1
    (up,) = await ratings(client)
    assert up["rating"] == "up" and rated(up).startswith(PIN)


async def test_telegram_a_message_reaction_rates_the_bots_message(
        serve: Serve, telegram_api: StandIn) -> None:  # noqa: F811
    client = await serve(telegram_settings(telegram_api))
    await telegram_post(client, telegram_update(1, "reset my pin", chat=1111111))
    await settled(telegram_api, 1)
    reaction = {"update_id": 2, "message_reaction": {  # core.telegram.org/bots/api
        "chat": {"id": 1111111, "type": "private"}, "message_id": 7,
        "user": {"id": 1111111, "is_bot": False, "first_name": "Test"}, "date": 1441645600,
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👎"}]}}
    assert (await telegram_post(client, reaction)).status == 200
    assert (await telegram_post(client, reaction)).status == 200  # redelivered
    anonymous = {"update_id": 3, "message_reaction": {**reaction["message_reaction"],
                                                      "user": None}}
    assert (await telegram_post(client, anonymous)).status == 200
    await asyncio.sleep(0.3)
    assert len(telegram_api.requests) == 1
    (down,) = await ratings(client)
    assert down["rating"] == "down" and rated(down).startswith(PIN)


async def test_teams_a_like_on_the_bots_reply_rates_it(serve: Serve,
                                                       bf: BotFramework) -> None:  # noqa: F811
    client = await serve(teams_settings(bf))
    bf.connector.default = (200, {"id": "1:bot-reply-1"})
    assert (await teams_post(client, teams_message(bf, "reset my pin", "10"),
                             bf.token())).status == 200
    await bf.connector.wait_for(2)  # the app token, the reply
    like = {**teams_message(bf, None, "11"), "type": "messageReaction",
            "reactionsAdded": [{"type": "like"}], "replyToId": "1:bot-reply-1"}
    assert (await teams_post(client, like, bf.token())).status == 200
    await asyncio.sleep(0.3)
    assert len(bf.replies()) == 1
    (up,) = await ratings(client)
    assert up["rating"] == "up" and rated(up).startswith(PIN)
