"""The desk over HTTP and its WebSocket: sign-in, refusals, CSRF, and an agent's work."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.server.app import RUNTIME
from bot.sessions.events import (
    AGENT_NOTE_EVENT,
    AGENT_REPLY_EVENT,
    HANDOFF_RESOLVED_EVENT,
    HANDOFF_RETURNED_EVENT,
    HANDOFF_TAKEN_EVENT,
)
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .desk_support import (
    ALICE_SECRET,
    BOB_SECRET,
    DESK_BOT,
    ask_for_person,
    base_url,
    desk,
    make_desk_bot,
    race_to_take,
    sign_in,
)
from .dialogue_support import FakeAnalyzer, client_for, runtime_for

__all__ = ["desk"]


async def events_of(client: TestClient, key: str) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    store = client.app[RUNTIME].store
    return [e async for e in store.iter_events(key=key)]


async def test_desk_refuses_requests_without_a_sign_in(desk: TestClient) -> None:  # type: ignore[type-arg]
    response = await desk.get("/desk", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/desk/sign-in"
    for path in ("/desk/api/queues", "/desk/api/conversation?id=rest:x", "/desk/socket"):
        response = await desk.get(path)
        assert response.status == 401 and "sign in" in (await response.json())["error"]
    for path in ("/desk/api/take", "/desk/api/reply", "/desk/sign-out"):
        response = await desk.post(path, json={"id": "rest:x", "text": "hi"})
        assert response.status == 401
    desk.session.cookie_jar.update_cookies({"supportbot_desk": "forged-cookie-value"})
    assert (await desk.get("/desk/api/queues")).status == 401


async def test_sign_in_says_what_is_wrong_and_throttles_guessing(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    page = await desk.get("/desk/sign-in")
    html = await page.text()
    assert page.status == 200 and 'name="credential"' in html and 'type="password"' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    response = await desk.post("/desk/sign-in", data={"name": "Alice", "credential": "nope"},
                               allow_redirects=False)
    assert response.status == 401 and "Wrong name or credential." in await response.text()
    assert "supportbot_desk" not in response.cookies
    response = await desk.post("/desk/sign-in", data={"name": "Alice", "credential": BOB_SECRET})
    assert response.status == 401  # another agent's credential is wrong for Alice
    response = await desk.post("/desk/sign-in", data={"name": "", "credential": ""})
    assert response.status == 400 and "Enter your name and your credential." in \
        await response.text()
    response = await desk.post("/desk/sign-in", data={
        "name": "<script>alert(1)</script>", "credential": "x"})
    assert "<script>alert(1)" not in await response.text()  # echoed escaped
    for _ in range(3):
        await desk.post("/desk/sign-in", data={"name": "Alice", "credential": "guess"})
    response = await desk.post("/desk/sign-in", data={"name": "Alice", "credential": "guess"})
    assert response.status == 429 and "Too many failed sign-ins" in await response.text()
    assert int(response.headers["Retry-After"]) > 0

    response = await desk.post("/desk/sign-in", data={"name": "Bob", "credential": BOB_SECRET},
                               allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/desk"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/desk" in cookie
    assert BOB_SECRET not in cookie


async def test_state_changing_requests_need_the_csrf_token_and_sign_out_ends_it(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    await ask_for_person(desk, "carol")
    alice = await sign_in(base_url(desk), "Alice", ALICE_SECRET)
    try:
        for headers in ({"X-CSRF-Token": ""}, {"X-CSRF-Token": "guessed"}):
            response = await alice.post("/desk/api/take", {"id": "rest:carol"}, **headers)
            assert response.status == 403 and "X-CSRF-Token" in (await response.json())["error"]
        response = await alice.post("/desk/api/take", {"id": "rest:carol"},
                                    Origin="http://evil.example")
        assert response.status == 403
        session = await desk.app[RUNTIME].store.get("rest:carol", channel="rest",
                                                    sender="carol")
        assert session.state["handoff"]["agent"] is None  # nothing was taken

        for body, status, words in [
                ({"id": "nocolon"}, 400, "conversation id"), ({}, 400, "'id' is required"),
                ({"id": "rest:nobody"}, 404, "not handed off")]:
            response = await alice.post("/desk/api/take", body)
            assert response.status == status and words in (await response.json())["error"]
        response = await alice.post("/desk/api/reply", {"id": "rest:carol", "text": " "})
        assert response.status == 400 and "'text'" in (await response.json())["error"]

        socket = await alice.http.ws_connect(alice.base + "/desk/socket")
        assert json.loads((await socket.receive()).data) == {"type": "hello", "agent": "Alice"}
        assert json.loads((await socket.receive()).data) == {"type": "presence",
                                                             "online": ["Alice"]}
        response = await alice.post("/desk/sign-out")
        assert response.status == 200 and (await response.json())["signed_out"] == "Alice"
        message = await asyncio.wait_for(socket.receive(), 5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        old = aiohttp.ClientSession(cookies={"supportbot_desk": alice.cookie})
        try:  # the old cookie no longer works, even sent again by hand
            assert (await old.get(alice.base + "/desk/api/queues")).status == 401
        finally:
            await old.close()
        response = await alice.get("/desk")
        assert response.url.path == "/desk/sign-in"
    finally:
        await alice.close()


async def test_an_agent_takes_answers_notes_releases_and_resolves(
        desk: TestClient) -> None:  # type: ignore[type-arg]
    base = base_url(desk)
    await desk.post("/webhooks/rest", json={"sender": "dan",
                                            "message": "how long does a bank transfer take?"})
    alice, bob = await sign_in(base, "Alice", ALICE_SECRET), await sign_in(base, "Bob", BOB_SECRET)
    socket = await bob.http.ws_connect(base + "/desk/socket")
    try:
        await socket.receive()  # hello
        await socket.receive()  # presence: Bob online
        await ask_for_person(desk, "dan")
        frame = json.loads((await asyncio.wait_for(socket.receive(), 5)).data)
        assert frame == {"type": "changed", "id": "rest:dan", "what": "message", "agent": None}
        queues = await (await alice.get("/desk/api/queues")).json()
        assert [r["id"] for r in queues["waiting"]] == ["rest:dan"]
        assert queues["waiting"][0]["last_message"] == "I want to talk to a person"

        assert (await alice.post("/desk/api/take", {"id": "rest:dan"})).status == 200
        assert json.loads((await socket.receive()).data)["what"] == "taken"
        response = await bob.post("/desk/api/take", {"id": "rest:dan"})
        assert response.status == 409 and "Alice" in (await response.json())["error"]
        assert (await bob.get("/desk/api/conversation?id=rest:dan")).status == 409
        queues = await (await bob.get("/desk/api/queues")).json()
        assert [r["id"] for r in queues["others"]] == ["rest:dan"] and queues["mine"] == []

        response = await alice.post("/desk/api/reply", {"id": "rest:dan", "text": "Alice here."})
        assert await response.json() == {"delivered": "queued"}  # REST cannot push
        response = await alice.post("/desk/api/note", {"id": "rest:dan",
                                                       "text": "VIP; check the refund"})
        assert response.status == 200
        outbox = await (await desk.get("/webhooks/rest/outbox?sender=dan")).json()
        assert [(m["kind"], m["text"], m.get("agent")) for m in outbox["messages"]] == [
            ("agent_joined", "Alice joined the conversation.", "Alice"),
            ("agent", "Alice here.", "Alice")]  # the note never reaches the customer
        reply = (await (await desk.post("/webhooks/rest", json={
            "sender": "dan", "message": "thanks Alice"})).json())[0]
        assert reply["kind"] == "handoff" and "member of our team will" not in reply["text"]

        detail = await (await alice.get("/desk/api/conversation?id=rest:dan")).json()
        items = [(i["role"], i["text"]) for i in detail["transcript"]]
        assert items[0] == ("user", "how long does a bank transfer take?")
        assert ("agent", "Alice here.") in items and ("note", "VIP; check the refund") in items
        answer = detail["transcript"][1]
        assert answer["role"] == "bot" and answer["citations"][0]["id"] == "transfer-time"
        assert answer["citations"][0]["title"] == "How long does a bank transfer take?"
        assert items[-2:] == [("user", "thanks Alice"),
                              ("bot", "(Your message has been passed on to our team.)")]

        assert (await bob.post("/desk/api/release", {"id": "rest:dan"})).status == 409
        assert (await alice.post("/desk/api/release", {"id": "rest:dan"})).status == 200
        queues = await (await bob.get("/desk/api/queues")).json()
        assert [r["id"] for r in queues["waiting"]] == ["rest:dan"]
        assert (await bob.post("/desk/api/take", {"id": "rest:dan"})).status == 200
        response = await bob.post("/desk/api/resolve", {"id": "rest:dan"})
        assert (await response.json())["status"] == "bot"
        queues = await (await bob.get("/desk/api/queues")).json()
        assert queues["waiting"] == queues["mine"] == queues["others"] == []
        outbox = await (await desk.get("/webhooks/rest/outbox?sender=dan")).json()
        assert [m["kind"] for m in outbox["messages"]] == [
            "agent_left", "agent_joined", "agent_left", "handback"]
        assert outbox["messages"][0]["text"].startswith("Alice left the conversation.")

        done = [(e["kind"], e["data"].get("agent")) for e in await events_of(desk, "rest:dan")
                if e["kind"] != "turn"]
        assert done == [(HANDOFF_TAKEN_EVENT, "Alice"), (AGENT_REPLY_EVENT, "Alice"),
                        (AGENT_NOTE_EVENT, "Alice"), (HANDOFF_RETURNED_EVENT, "Alice"),
                        (HANDOFF_TAKEN_EVENT, "Bob"), (HANDOFF_RESOLVED_EVENT, "Bob")]
    finally:
        await socket.close()
        await alice.close()
        await bob.close()


async def test_two_workers_sharing_one_sqlite_file_let_exactly_one_agent_take(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
        embedder: SentenceEmbedder) -> None:
    root = make_desk_bot(make_bot, monkeypatch)
    # two apps, two stores on one file: as two `bot serve` workers, their locks not shared
    workers = [await client_for(runtime_for(root, embedder, FakeAnalyzer())) for _ in "ab"]
    alice = await sign_in(base_url(workers[0]), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(workers[1]), "Bob", BOB_SECRET)
    try:
        senders = [f"racer{i}" for i in range(8)]
        for sender in senders:
            await ask_for_person(workers[0], sender)
        for sender in senders:
            await race_to_take(alice, bob, sender, workers)
        # a sign-in made on one worker is valid on the other (the store holds it)
        bob.base = base_url(workers[0])
        assert (await bob.get("/desk/api/queues")).status == 200
    finally:
        await alice.close()
        await bob.close()
        for worker in workers:
            await worker.close()


async def test_agents_come_from_the_environment_only(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.definition.loader import load_bot
    from bot.errors import ConfigError

    monkeypatch.setenv("DESK_BOB", BOB_SECRET)
    for agents, words in [("Alice: literal-credential-123", "environment variable"),
                          ("Alice: ${DESK_SHORT}", "at least 12"),
                          ("'<b>': ${DESK_BOB}", "must start with a letter")]:
        monkeypatch.setenv("DESK_SHORT", "short")
        yaml = DESK_BOT.replace("    Alice: ${DESK_ALICE}\n    Bob: ${DESK_BOB}",
                                f"    {agents}")
        with pytest.raises(ConfigError, match=words) as caught:
            load_bot(make_bot(yaml, name="bad_agents"))
        assert "handoff.agents" in str(caught.value) and "literal-credential" not in \
            str(caught.value)


async def test_an_agent_without_a_credential_cannot_sign_in(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
        embedder: SentenceEmbedder) -> None:
    monkeypatch.delenv("DESK_UNSET", raising=False)
    yaml = DESK_BOT.replace("    Alice: ${DESK_ALICE}\n    Bob: ${DESK_BOB}",
                            "    Alice: ${DESK_UNSET:-}")
    client = await client_for(runtime_for(make_desk_bot(make_bot, monkeypatch, bot_yaml=yaml),
                                          embedder, FakeAnalyzer()))
    try:
        response = await client.post("/desk/sign-in", data={"name": "Alice", "credential": ""})
        assert response.status == 403 and "add handoff.agents" in await response.text()
    finally:
        await client.close()
