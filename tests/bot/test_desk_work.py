"""The desk's help for agents and the customer's side of it, over HTTP and sockets: agent
assist, the typing indicator, presence and assignment, the widget's history, thumbs and
"end chat", and released conversations in the agent API."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.definition.dialogue import AssignmentSettings
from bot.server.app import RUNTIME
from bot.server.desk.assignment import Assigner
from bot.server.desk.hub import DeskHub
from bot.sessions.events import CHAT_ENDED_EVENT, FEEDBACK_EVENT, HANDOFF_TAKEN_EVENT
from retrieval.embedder import SentenceEmbedder

from ..conftest import FAQ_YAML, MakeBot
from .desk_support import (
    ALICE_SECRET,
    ASK_FOR_PERSON,
    BOB_SECRET,
    DESK_BOT,
    ask_for_person,
    base_url,
    bearer,
    desk,
    make_desk_bot,
    sign_in,
    visitor,
    widget_reply,
)
from .dialogue_support import FakeAnalyzer, client_for, runtime_for

__all__ = ["desk"]
GUIDELINES = """
- id: promo-codes
  question: Can I get a discount code?
  answer: Generate the promo code in the admin panel and share it with the customer.
"""
ASSIST_BOT = DESK_BOT.replace(
    "  sources: [faq/main.yaml]\n",
    "  sources: [faq/main.yaml]\n  agent_sources: [faq/guidelines.yaml]\n")


async def events(client: TestClient, key: str, kind: str) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    store = client.app[RUNTIME].store
    return [e["data"] async for e in store.iter_events(key=key) if e["kind"] == kind]


async def test_assist_suggests_faq_and_team_answers_for_the_last_message(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> None:
    monkeypatch.setenv("DESK_ALICE", ALICE_SECRET)
    monkeypatch.setenv("DESK_BOB", BOB_SECRET)
    root = make_bot(ASSIST_BOT, files={"faq/main.yaml": FAQ_YAML,
                                       "faq/guidelines.yaml": GUIDELINES}, name="desk_bot")
    client = await client_for(runtime_for(root, embedder, FakeAnalyzer()))
    alice = await sign_in(base_url(client), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(client), "Bob", BOB_SECRET)
    try:
        await ask_for_person(client, "ivy")
        await client.post("/webhooks/rest", json={"sender": "ivy",
                                                  "message": "can I get a discount code?"})
        found = await (await alice.get("/desk/api/assist?id=rest:ivy")).json()
        assert found["question"] == "can I get a discount code?"
        best = found["suggestions"][0]
        assert (best["id"], best["audience"]) == ("promo-codes", "agents")
        assert best["text"].startswith("Generate the promo code") and best["score"] >= 0.3
        await client.post("/webhooks/rest", json={"sender": "ivy",
                                                  "message": "how long does a transfer take?"})
        found = await (await alice.get("/desk/api/assist?id=rest:ivy")).json()
        best = found["suggestions"][0]
        assert (best["id"], best["audience"]) == ("transfer-time", "customers")
        assert best["title"] == "How long does a bank transfer take?"
        assert len(found["suggestions"]) <= 3
        assert (await alice.post("/desk/api/take", {"id": "rest:ivy"})).status == 200
        assert (await bob.get("/desk/api/assist?id=rest:ivy")).status == 409  # Alice's
        assert (await client.get("/desk/api/assist?id=rest:ivy")).status == 401
        assert (await alice.get("/desk/api/assist?id=rest:nobody")).status == 404
    finally:
        await alice.close()
        await bob.close()
        await client.close()


async def test_the_customer_sees_the_agent_typing_and_can_rate_see_and_end_the_chat(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    token, sender = await visitor(desk)
    key = f"webchat:{sender}"
    alice = await sign_in(base_url(desk), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(desk), "Bob", BOB_SECRET)
    socket = await alice.http.ws_connect(alice.base + "/desk/socket")
    ws = await desk.ws_connect(f"/webhooks/webchat/ws?token={token}")
    try:
        await ws.send_json({"type": "message", "message": "how long does a bank transfer take?"})
        answer = await widget_reply(ws)
        rated = await desk.post("/webhooks/rest/feedback", headers=bearer(token), json={
            "rating": "up", "reply_text": answer["text"]})
        assert rated.status == 200, await rated.text()
        (feedback,) = await events(desk, key, FEEDBACK_EVENT)
        assert feedback["rating"] == "up" and feedback["citations"] == ["transfer-time"]
        response = await desk.post("/webhooks/rest/feedback", headers=bearer(token),
                                   json={"rating": "down", "reply_text": "never said"})
        assert response.status == 400 and "matches no reply" in (await response.json())["error"]

        await ws.send_json({"type": "message", "message": ASK_FOR_PERSON})
        assert (await widget_reply(ws))["handoff"] is True
        assert (await alice.post("/desk/api/typing", {"id": key})).status == 409  # not hers
        assert (await alice.post("/desk/api/take", {"id": key})).status == 200
        assert (await widget_reply(ws))["kind"] == "agent_joined"
        response = await alice.post("/desk/api/typing", {"id": key})
        assert await response.json() == {"sent": True}
        typing = await widget_reply(ws)
        assert (typing["kind"], typing["agent"], typing["text"]) == ("agent_typing", "Alice", "")
        assert await (await alice.post("/desk/api/typing", {"id": key})).json() == \
            {"sent": False}  # throttled
        assert (await bob.post("/desk/api/typing", {"id": key})).status == 409
        assert (await alice.post("/desk/api/typing", {"id": key},
                                 **{"X-CSRF-Token": "x"})).status == 403

        history = await (await desk.get("/webhooks/webchat/history", headers=bearer(token))).json()
        assert [(m["role"], m["text"]) for m in history["messages"]][:2] == [
            ("user", "how long does a bank transfer take?"), ("bot", answer["text"])]
        assert history["messages"][1]["citations"][0]["title"] == \
            "How long does a bank transfer take?"
        assert all(m["ts"] > 0 for m in history["messages"])
        assert history["handoff"] is True and history["agent"] == "Alice"
        response = await desk.get("/webhooks/webchat/history")  # REST is open in the tests
        assert response.status == 400 and "'sender'" in (await response.json())["error"]
        other, _ = await visitor(desk)
        theirs = await (await desk.get("/webhooks/webchat/history", headers=bearer(other))).json()
        assert theirs["messages"] == []  # a token sees its own conversation only

        ended = await desk.post("/webhooks/webchat/end", headers=bearer(token))
        assert await ended.json() == {"ended": True, "handoff": "active"}
        while (frame := json.loads((await asyncio.wait_for(socket.receive(), 5)).data)) \
                .get("what") != "ended":
            pass
        assert frame == {"type": "changed", "id": key, "what": "ended", "agent": "Alice"}
        history = await (await desk.get("/webhooks/webchat/history", headers=bearer(token))).json()
        assert history == {"messages": [], "handoff": False, "agent": None, "user": None}
        (kept,) = await events(desk, key, CHAT_ENDED_EVENT)
        assert kept["agent"] == "Alice" and len(kept["history"]) >= 4
        queues = await (await alice.get("/desk/api/queues")).json()
        assert queues["mine"] == queues["waiting"] == []
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        assert (await desk.post("/webhooks/webchat/end", headers=bearer(forged))).status == 401
    finally:
        await ws.close()
        await socket.close()
        await alice.close()
        await bob.close()


async def assigned(client: TestClient, sender: str) -> str | None:  # type: ignore[type-arg]
    """Who holds ``rest:<sender>`` once assignment has run (None: still waiting)."""
    store = client.app[RUNTIME].store
    for _ in range(50):
        session = await store.get(f"rest:{sender}", channel="rest", sender=sender)
        if session.state["handoff"].get("agent"):
            return str(session.state["handoff"]["agent"])
        await asyncio.sleep(0.1)
    return None


async def test_new_handoffs_go_round_robin_to_online_agents_under_a_chat_limit(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> None:
    yaml = DESK_BOT + "  assignment: {mode: round_robin, chat_limit: 1}\n"
    root = make_desk_bot(make_bot, monkeypatch, bot_yaml=yaml)
    client = await client_for(runtime_for(root, embedder, FakeAnalyzer()))
    alice = await sign_in(base_url(client), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(client), "Bob", BOB_SECRET)
    sockets = []
    try:
        await ask_for_person(client, "early")  # nobody online: it waits
        assert await assigned(client, "early") is None
        sockets.append(await alice.http.ws_connect(alice.base + "/desk/socket"))
        assert await assigned(client, "early") == "Alice"  # she came online: hers
        await ask_for_person(client, "c1")  # Alice is at her limit, Bob is offline
        await asyncio.sleep(0.5)
        assert await assigned(client, "c1") is None
        sockets.append(await bob.http.ws_connect(bob.base + "/desk/socket"))
        assert await assigned(client, "c1") == "Bob"
        frames = [json.loads((await sockets[1].receive()).data) for _ in range(2)]
        assert frames[1] == {"type": "presence", "online": ["Alice", "Bob"]}
        taken = await (await client.get("/webhooks/rest/outbox?sender=c1")).json()
        assert [m["text"] for m in taken["messages"]] == ["Bob joined the conversation."]
        assert (await events(client, "rest:c1", HANDOFF_TAKEN_EVENT)) == [
            {"agent": "Bob", "via": "assignment"}]

        assert (await alice.post("/desk/api/resolve", {"id": "rest:early"})).status == 200
        await ask_for_person(client, "c2")  # round robin: after Bob comes Alice again
        assert await assigned(client, "c2") == "Alice"
    finally:
        for socket in sockets:
            await socket.close()
        await alice.close()
        await bob.close()
        await client.close()


def test_least_busy_picks_the_online_agent_holding_fewest_within_the_limit() -> None:
    assigner = Assigner(AssignmentSettings(mode="least_busy", chat_limit=2), None,  # type: ignore[arg-type]
                        DeskHub(), None)  # type: ignore[arg-type]
    online = ["Alice", "Bob", "Cleo"]
    assert assigner.pick(online, Counter({"Alice": 1, "Bob": 0, "Cleo": 1})) == "Bob"
    assert assigner.pick(online, Counter({"Alice": 1, "Bob": 2, "Cleo": 1})) == "Alice"
    assert assigner.pick(online, Counter({"Alice": 2, "Bob": 2, "Cleo": 2})) is None
    unlimited = Assigner(AssignmentSettings(mode="round_robin", chat_limit=0), None,  # type: ignore[arg-type]
                         DeskHub(), None)  # type: ignore[arg-type]
    unlimited.last = "Cleo"
    assert unlimited.pick(online, Counter({"Alice": 50})) == "Alice"  # wraps around


async def test_the_agent_api_lists_released_conversations_under_all(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    await ask_for_person(desk, "rae")
    alice = await sign_in(base_url(desk), "Alice", ALICE_SECRET)
    try:
        assert (await alice.post("/desk/api/take", {"id": "rest:rae"})).status == 200
        assert (await alice.post("/desk/api/resolve", {"id": "rest:rae"})).status == 200
    finally:
        await alice.close()
    auth = {"Authorization": f"Bearer {ALICE_SECRET}"}
    listed = await (await desk.get("/agent/conversations?status=all", headers=auth)).json()
    assert [(c["id"], c["status"], c["agent"]) for c in listed["conversations"]] == [
        ("rest:rae", "released", "Alice")]
    response = await desk.get("/agent/conversations?status=gone", headers=auth)
    assert response.status == 400 and "released" in (await response.json())["error"]


async def test_an_agent_message_shown_after_a_reload_is_not_repeated(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    token, sender = await visitor(desk)
    key = f"webchat:{sender}"
    alice = await sign_in(base_url(desk), "Alice", ALICE_SECRET)
    try:
        ws = await desk.ws_connect(f"/webhooks/webchat/ws?token={token}")
        await ws.send_json({"type": "message", "message": ASK_FOR_PERSON})
        assert (await widget_reply(ws))["handoff"] is True
        assert (await alice.post("/desk/api/take", {"id": key})).status == 200
        await ws.close()  # the customer closes the page
        sent = await alice.post("/desk/api/reply", {"id": key, "text": "Your refund left today."})
        assert await sent.json() == {"delivered": "queued"}
        history = await (await desk.get("/webhooks/webchat/history", headers=bearer(token))).json()
        assert "Your refund left today." in [m["text"] for m in history["messages"]]
        ws = await desk.ws_connect(f"/webhooks/webchat/ws?token={token}")  # the reload
        await alice.post("/desk/api/release", {"id": key})
        await ws.send_json({"type": "message", "message": "how long does a bank transfer take?"})
        while (reply := await widget_reply(ws))["kind"] in ("agent_left", "handback"):
            pass
        assert "Your refund left today." not in reply["text"]
        await ws.close()
    finally:
        await alice.close()
