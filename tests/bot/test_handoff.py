from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.cli import main
from bot.runtime import BotRuntime
from bot.server.agent_api import DELIVER
from foundation.messages import BotReply
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .dialogue_support import (
    AGENT_TOKEN,
    ALICE,
    BOB,
    DIALOGUE_BOT,
    FakeAnalyzer,
    auth,
    backend,
    client_for,
    dialogue_client,
    make_dialogue_bot,
    runtime_for,
    sayer,
)

__all__ = ["backend", "dialogue_client"]


async def test_handoff_round_trip_through_the_agent_api(
        dialogue_client: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = dialogue_client
    say = sayer(client, "eve")
    assert (await say("how long does a bank transfer take?"))["kind"] == "faq"
    await say("track my card")
    await say("4821")
    reply = await say("I want to talk to a person")
    assert reply["kind"] == "handoff" and reply["handoff"] is True
    assert reply["text"] == "Passing you to a colleague now."
    note = await say("hello? how do I reset my PIN?")  # the bot stays out of it
    assert note["kind"] == "handoff" and "member of our team" in note["text"]
    assert note["citations"] == []

    for headers in ({}, auth("wrong-token"), {"Authorization": "Basic xyz"}):
        response = await client.get("/agent/conversations", headers=headers)
        assert response.status == 401
    response = await client.get("/agent/conversations?status=waiting", headers=auth())
    (waiting,) = (await response.json())["conversations"]
    assert waiting["id"] == "rest:eve" and waiting["status"] == "waiting"
    summary = waiting["summary"]
    assert summary["reason"] == "requested"
    assert summary["intents"][-2:] == ["check_card", "human_agent"]
    assert summary["slots"] == {"card_last4": "4821"}
    assert summary["faq_topics"] == ["How long does a bank transfer take?"]
    assert summary["last_user_messages"][-1] == "hello? how do I reset my PIN?"

    take = {"id": "rest:eve"}
    assert (await client.post("/agent/take", json=take, headers=auth(ALICE))).status == 200
    assert (await client.post("/agent/take", json=take, headers=auth(BOB))).status == 409
    response = await client.post("/agent/reply", headers=auth(ALICE), json={
        "id": "rest:eve", "text": "Hi Eve, Alice here. Let me look."})
    assert await response.json() == {"delivered": "queued"}  # REST cannot push
    outbox = await (await client.get("/webhooks/rest/outbox?sender=eve")).json()
    assert [m["text"] for m in outbox["messages"]] == ["Hi Eve, Alice here. Let me look."]
    assert outbox["handoff"] is True
    assert (await (await client.get("/webhooks/rest/outbox?sender=eve")).json()
            )["messages"] == []

    await client.post("/agent/reply", headers=auth(ALICE),
                      json={"id": "rest:eve", "text": "Found it."})
    reply = await say("any news?")  # queued agent messages come with the next reply
    assert reply["kind"] == "agent" and reply["text"] == "Found it."
    detail = await (await client.get("/agent/conversation?id=rest:eve",
                                      headers=auth(ALICE))).json()
    roles = [t["role"] for t in detail["history"]]
    assert roles.count("agent") == 2 and detail["agent"] == "alice"

    response = await client.post("/agent/release", json={"id": "rest:eve"},
                                 headers=auth(ALICE))
    assert (await response.json())["status"] == "bot"
    reply = await say("how long does a bank transfer take?")
    assert reply["kind"] == "faq" and reply["handoff"] is False
    response = await client.get("/agent/conversations", headers=auth())
    listed = (await response.json())["conversations"]  # all: released ones stay listed
    assert [(c["id"], c["status"], c["agent"]) for c in listed] == [
        ("rest:eve", "released", "alice")]
    for status in ("waiting", "active"):
        response = await client.get(f"/agent/conversations?status={status}", headers=auth())
        assert (await response.json())["conversations"] == []
    response = await client.post("/agent/reply", headers=auth(),
                                 json={"id": "rest:eve", "text": "late"})
    assert response.status == 404


async def test_agent_messages_are_pushed_when_the_channel_can(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, backend), embedder,
                          FakeAnalyzer())
    pushed: list[tuple[str, str, BotReply]] = []

    async def deliver(channel: str, sender: str, reply: BotReply) -> bool:
        pushed.append((channel, sender, reply))
        return True

    from aiohttp.test_utils import TestClient, TestServer

    from bot.server.app import create_app

    app = create_app(runtime.bot, runtime=runtime)
    app[DELIVER] = deliver  # as a connector with `push` would
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await sayer(client, "fay")("get me a human")
        response = await client.post("/agent/reply", headers=auth(),
                                     json={"id": "rest:fay", "text": "Hello Fay"})
        assert await response.json() == {"delivered": "pushed"}
        assert [(c, s, r.text, r.kind) for c, s, r in pushed] == \
            [("rest", "fay", "Hello Fay", "agent")]
        await client.post("/agent/release", headers=auth(), json={"id": "rest:fay"})
        handback = pushed[-1][2]  # the widget drops its handoff banner on this kind
        assert handback.kind == "handback" and handback.handoff is False
    finally:
        await client.close()


async def test_agent_api_is_disabled_without_a_token(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    bot_yaml = DIALOGUE_BOT.replace("  agent_token: ${TEST_AGENT_TOKEN}\n", "").replace(
        "  agents:\n    alice: ${TEST_ALICE_TOKEN:-alice-token-0123456789}\n"
        "    bob: ${TEST_BOB_TOKEN:-bob-token-0123456789}\n", "")
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, backend, bot_yaml=bot_yaml),
                          embedder, FakeAnalyzer())
    client = await client_for(runtime)
    try:
        response = await client.get("/agent/conversations", headers=auth())
        assert response.status == 403 and "handoff.agents" in (await response.json())["error"]
    finally:
        await client.close()


async def test_feedback_is_stored_and_exported_as_training_data(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder, tmp_path: Path) -> None:
    root = make_dialogue_bot(make_bot, monkeypatch, backend)
    runtime = runtime_for(root, embedder, FakeAnalyzer())
    client = await client_for(runtime)
    try:
        say = sayer(client, "gus")
        await say("how long does a bank transfer take?")
        await say("hello")
        rate = "/webhooks/rest/feedback"
        response = await client.post(rate, json={"sender": "gus", "rating": "down",
                                                 "comment": "too vague"})
        assert (await response.json())["rated"] == "Hello gus!"
        response = await client.post(rate, json={"sender": "gus", "rating": "up",
                                                 "reply_index": 0})
        assert response.status == 200
        for body, message in [({"sender": "gus", "rating": "meh"}, "rating"),
                              ({"sender": "gus", "rating": "up", "reply_index": 5}, "range"),
                              ({"sender": "nobody", "rating": "up"}, "range"),
                              ({"rating": "up"}, "sender")]:
            response = await client.post(rate, json=body)
            assert response.status == 400 and message in (await response.json())["error"]
        await client.post(rate, json={"sender": "gus", "rating": "up"})  # re-rated: latest wins
    finally:
        await client.close()
    out = tmp_path / "feedback.jsonl"
    assert await asyncio.to_thread(main, ["export", str(root), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    first = next(r for r in rows if r["messages"][-1]["content"].startswith("Domestic"))
    assert first["rating"] == "up" and first["citations"] == ["transfer-time"]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    last = next(r for r in rows if r is not first)
    assert last["rating"] == "up" and last["comment"] is None
    assert [m["role"] for m in last["messages"]] == ["user", "assistant"] * 2
    assert await asyncio.to_thread(
        main, ["export", str(root), "--out", str(out), "--rating", "down"]) == 0
    assert out.read_text() == ""
    assert await asyncio.to_thread(main, ["export", str(root)]) == 0  # the build folder
    assert len((root / ".bot" / "training" / "feedback.jsonl").read_text().splitlines()) == 2
    assert not (root / "training").exists()  # nothing written into the bot's sources


async def test_a_typed_thumbs_rates_the_last_reply_unless_a_person_has_the_conversation(
        dialogue_client: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    runtime, client = dialogue_client
    say = sayer(client, "hal")

    async def ratings() -> list[dict[str, Any]]:
        return [e["data"] async for e in runtime.store.iter_events() if e["kind"] == "feedback"]

    first = await say("\U0001f44d")  # nothing to rate yet: an ordinary message
    assert first["kind"] != "feedback" and await ratings() == []
    answer = await say("how long does a bank transfer take?")
    history = (await runtime.store.get("rest:hal", channel="rest", sender="hal")).history
    thanks = await say("\U0001f44e\U0001f3fd")  # skin tone aside, a thumbs down
    assert thanks["kind"] == "feedback" and thanks["text"] == "Thank you for the feedback."
    (rated,) = await ratings()
    assert rated["rating"] == "down" and rated["source"] == "message"
    assert rated["messages"][-1] == {"role": "assistant", "content": answer["text"]}
    after = (await runtime.store.get("rest:hal", channel="rest", sender="hal")).history
    assert after == history  # a rating is not a turn of the conversation
    assert (await say("I want to talk to a person"))["handoff"] is True
    to_agent = await say("\U0001f44d")  # for the person who will answer, not a rating
    assert to_agent["kind"] == "handoff" and len(await ratings()) == 1


def test_chat_messages_keep_a_delivered_agent_reply_once() -> None:
    from bot.server.feedback import chat_messages

    turns = [{"role": "user", "text": "hi"}, {"role": "agent", "text": "Alice here"},
             {"role": "user", "text": "?"}, {"role": "bot", "text": "Alice here", "kind": "agent"},
             {"role": "bot", "text": "Back to the bot.", "kind": "faq"}]
    assert chat_messages(turns) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Alice here", "source": "agent"},
        {"role": "user", "content": "?"}, {"role": "assistant", "content": "Back to the bot."}]


async def test_finding_6_an_agent_cannot_act_as_another_or_on_their_conversation(
        dialogue_client: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    runtime, client = dialogue_client
    await sayer(client, "gil")("get me a human")
    key = {"id": "rest:gil"}
    assert (await client.post("/agent/take", json=key, headers=auth(ALICE))).status == 200
    impersonation = await client.post("/agent/reply", headers=auth(BOB), json={
        **key, "agent": "alice", "text": "Alice here (not really)"})
    assert impersonation.status == 403
    assert "belongs to agent 'bob'" in (await impersonation.json())["error"]
    for path, body in (("/agent/reply", {**key, "text": "Bob here"}),
                       ("/agent/release", key), ("/agent/take", key)):
        for token in (BOB, AGENT_TOKEN):  # another agent, or the shared token
            response = await client.post(path, json=body, headers=auth(token))
            assert response.status == 409, (path, token)
            assert "taken by alice" in (await response.json())["error"]
    peek = await client.get("/agent/conversation?id=rest:gil", headers=auth(BOB))
    assert peek.status == 409
    session = await runtime.store.get("rest:gil", channel="rest", sender="gil")
    assert not [t for t in session.history if t["role"] == "agent"]
    assert session.state["handoff"]["agent"] == "alice"
    released = await client.post("/agent/release", json=key, headers=auth(ALICE))
    assert released.status == 200
    events = [e async for e in runtime.store.iter_events(key="rest:gil")]
    assert [(e["kind"], e["data"].get("agent")) for e in events
            if e["kind"].startswith("handoff_")] == \
        [("handoff_taken", "alice"), ("handoff_released", "alice")]


async def test_finding_11_the_handback_note_reaches_a_rest_user_and_clears_the_handoff(
        dialogue_client: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = dialogue_client
    say = sayer(client, "hal")
    assert (await say("get me a human"))["handoff"] is True
    released = await client.post("/agent/release", json={"id": "rest:hal"}, headers=auth())
    assert (await released.json())["delivered"] == "queued"  # REST cannot push
    reply = await say("how long does a bank transfer take?")
    assert reply["text"].startswith("You're chatting with the assistant again.")
    assert reply["kind"] == "faq" and reply["handoff"] is False
    again = await say("how long does a bank transfer take?")  # delivered once
    assert not again["text"].startswith("You're chatting")
    outbox = await (await client.get("/webhooks/rest/outbox?sender=hal")).json()
    assert outbox == {"messages": [], "handoff": False}
