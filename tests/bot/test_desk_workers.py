"""The desk across workers: two apps (each its own runtime, store and hub) on one real
redis-server share live updates, customers' pushes, presence and assignment through the
relay (bot/server/desk/relay.py), and each keeps its own desks live while Redis is away."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.server.app import RUNTIME
from bot.server.desk import DESK_HUB
from bot.server.desk.relay import DeskRelay
from retrieval.embedder import SentenceEmbedder
from tests.local_redis import LocalRedis

from ..conftest import MakeBot
from .desk_support import (
    ALICE_SECRET,
    ASK_FOR_PERSON,
    BOB_SECRET,
    DESK_BOT,
    ask_for_person,
    base_url,
    make_desk_bot,
    race_to_take,
    sign_in,
    visitor,
    widget_reply,
)
from .dialogue_support import FakeAnalyzer, client_for, runtime_for
from .production_support import redis_server, redis_sessions

__all__ = ["redis_server"]
Client = TestClient  # type: ignore[type-arg]
Socket = aiohttp.ClientWebSocketResponse
ROUND_ROBIN = "  assignment: {mode: round_robin}\n"


def relay_of(client: Client) -> DeskRelay:
    relay = client.app[DESK_HUB].relay
    assert relay is not None, "the Redis store gives the hub a relay"
    return relay


async def joined(*clients: Client) -> None:
    """Until every worker listens on the shared channel."""
    for client in clients:
        await asyncio.wait_for(relay_of(client).subscribed.wait(), 15)


@pytest.fixture
async def workers(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
                  embedder: SentenceEmbedder, redis_server: LocalRedis,
                  request: pytest.FixtureRequest) -> AsyncIterator[tuple[Client, Client]]:
    """Two workers of the desk bot on one Redis (``@pytest.mark.parametrize("extra", ...)``
    adds to the YAML's handoff section)."""
    extra = getattr(request, "param", "")
    root: Path = make_desk_bot(make_bot, monkeypatch, bot_yaml=DESK_BOT + extra +
                               redis_sessions(redis_server.url))
    first = await client_for(runtime_for(root, embedder, FakeAnalyzer()))
    second = await client_for(runtime_for(root, embedder, FakeAnalyzer()))
    try:
        await joined(first, second)
        yield first, second
    finally:
        await first.close()
        await second.close()


async def frame_where(socket: Socket, wanted: Callable[[dict[str, Any]], bool],
                      timeout: float = 5.0) -> dict[str, Any]:
    """The first frame of a desk's socket that ``wanted`` accepts (skipping the others)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await socket.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame: dict[str, Any] = json.loads(message.data)
            if wanted(frame):
                return frame


def changed(key: str, what: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "changed" and f["id"] == key and f["what"] == what


def presence(*online: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "presence" and f["online"] == list(online)


async def holder(client: Client, key: str) -> str | None:
    """Who holds ``key`` once assignment has run (None: still waiting after 5 s)."""
    channel, _, sender = key.partition(":")
    for _ in range(50):
        session = await client.app[RUNTIME].store.get(key, channel=channel, sender=sender)
        if session.state["handoff"].get("agent"):
            return str(session.state["handoff"]["agent"])
        await asyncio.sleep(0.1)
    return None


async def test_a_handoff_on_one_worker_reaches_a_desk_on_the_other_and_the_agent_back(
        workers: tuple[Client, Client]) -> None:
    a, b = workers
    alice = await sign_in(base_url(a), "Alice", ALICE_SECRET)
    desk = await alice.http.ws_connect(alice.base + "/desk/socket")
    token, sender = await visitor(b)
    key = f"webchat:{sender}"
    widget = await b.ws_connect(f"/webhooks/webchat/ws?token={token}")
    try:
        await frame_where(desk, presence("Alice"))
        await widget.send_json({"type": "message", "message": ASK_FOR_PERSON})
        assert (await widget_reply(widget))["handoff"] is True
        assert await frame_where(desk, changed(key, "message")) == {
            "type": "changed", "id": key, "what": "message", "agent": None}
        queues = await (await alice.get("/desk/api/queues")).json()
        assert [r["id"] for r in queues["waiting"]] == [key]

        assert (await alice.post("/desk/api/take", {"id": key})).status == 200
        joined_ = await widget_reply(widget)
        assert (joined_["kind"], joined_["agent"]) == ("agent_joined", "Alice")
        typing = await alice.post("/desk/api/typing", {"id": key})
        assert await typing.json() == {"sent": True}
        assert (await widget_reply(widget))["kind"] == "agent_typing"

        started = time.monotonic()
        response = await alice.post("/desk/api/reply", {"id": key, "text": "Alice here."})
        assert await response.json() == {"delivered": "pushed"}  # by worker B
        reply = await widget_reply(widget)
        assert (reply["kind"], reply["text"], reply["agent"]) == ("agent", "Alice here.", "Alice")
        assert time.monotonic() - started < 1.0  # promptly: no waiting for a timeout

        await widget.send_json({"type": "message", "message": "thanks"})  # on B
        await widget_reply(widget)
        await frame_where(desk, changed(key, "message"))  # heard on A
        session = await b.app[RUNTIME].store.get(key, channel="webchat", sender=sender)
        assert "outbox" not in session.state or not session.state["outbox"]  # no queued copy

        await widget.close()  # the widget is closed: nobody pushes, so it is queued
        response = await alice.post("/desk/api/reply", {"id": key, "text": "Still there?"})
        assert await response.json() == {"delivered": "queued"}
    finally:
        await widget.close()
        await desk.close()
        await alice.close()


async def test_an_agent_on_one_worker_is_online_on_the_other(
        workers: tuple[Client, Client]) -> None:
    a, b = workers
    alice = await sign_in(base_url(a), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(b), "Bob", BOB_SECRET)
    on_a = await alice.http.ws_connect(alice.base + "/desk/socket")
    try:
        await frame_where(on_a, presence("Alice"))
        on_b = await bob.http.ws_connect(bob.base + "/desk/socket")
        await frame_where(on_b, presence("Alice", "Bob"))  # Alice's desk is on A
        await frame_where(on_a, presence("Alice", "Bob"))  # and A hears of Bob
        assert await b.app[DESK_HUB].everyone() == ["Alice", "Bob"]
        assert b.app[DESK_HUB].online() == ["Bob"]
        await on_a.close()
        await frame_where(on_b, presence("Bob"))
        await on_b.close()
        for _ in range(50):
            if await a.app[DESK_HUB].everyone() == []:
                break
            await asyncio.sleep(0.1)
        assert await a.app[DESK_HUB].everyone() == []
    finally:
        await on_a.close()
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("workers", [ROUND_ROBIN], indirect=True)
async def test_assignment_sees_the_agents_of_every_worker(
        workers: tuple[Client, Client]) -> None:
    a, b = workers
    alice = await sign_in(base_url(a), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(b), "Bob", BOB_SECRET)
    sockets = [await alice.http.ws_connect(alice.base + "/desk/socket")]
    try:
        await frame_where(sockets[0], presence("Alice"))
        await ask_for_person(b, "first")  # B assigns it to Alice, whose desk is on A
        assert await holder(b, "rest:first") == "Alice"
        await frame_where(sockets[0], lambda f: changed("rest:first", "taken")(f)
                          and f["agent"] == "Alice")
        sockets.append(await bob.http.ws_connect(bob.base + "/desk/socket"))
        await frame_where(sockets[1], presence("Alice", "Bob"))
        await ask_for_person(a, "second")  # round robin across workers: after Alice, Bob
        assert await holder(a, "rest:second") == "Bob"
        await ask_for_person(b, "third")
        assert await holder(b, "rest:third") == "Alice"
    finally:
        for socket in sockets:
            await socket.close()
        await alice.close()
        await bob.close()


async def test_two_agents_on_two_workers_race_and_exactly_one_takes(
        workers: tuple[Client, Client]) -> None:
    a, b = workers
    alice = await sign_in(base_url(a), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(b), "Bob", BOB_SECRET)
    watching = await bob.http.ws_connect(bob.base + "/desk/socket")
    try:
        senders = [f"racer{i}" for i in range(6)]
        for n, sender in enumerate(senders):
            await ask_for_person((a, b)[n % 2], sender)
        for sender in senders:
            winner = await race_to_take(alice, bob, sender, list(workers))
            frame = await frame_where(watching, changed(f"rest:{sender}", "taken"))
            assert frame["agent"] == winner  # Bob's desk on B hears of Alice's take on A too
            store = a.app[RUNTIME].store
            taken = [e async for e in store.iter_events(key=f"rest:{sender}")
                     if e["kind"] == "handoff_taken"]
            assert len(taken) == 1
    finally:
        await watching.close()
        await alice.close()
        await bob.close()


async def test_without_redis_a_worker_keeps_its_own_desks_live_and_rejoins(
        workers: tuple[Client, Client], redis_server: LocalRedis,
        caplog: pytest.LogCaptureFixture) -> None:
    a, b = workers
    alice = await sign_in(base_url(a), "Alice", ALICE_SECRET)
    bob = await sign_in(base_url(a), "Bob", BOB_SECRET)
    on_a = await alice.http.ws_connect(alice.base + "/desk/socket")
    bob_on_a = await bob.http.ws_connect(bob.base + "/desk/socket")
    hub = a.app[DESK_HUB]
    try:
        await frame_where(on_a, presence("Alice", "Bob"))
        caplog.set_level(logging.WARNING, logger="bot.server.desk.relay")
        redis_server.stop()
        started = time.monotonic()
        await hub.publish("rest:somebody", "note", "Alice")  # no error, told here at once
        assert await frame_where(on_a, changed("rest:somebody", "note")) == {
            "type": "changed", "id": "rest:somebody", "what": "note", "agent": "Alice"}
        await hub.publish("rest:somebody", "reply", "Alice")
        await frame_where(on_a, changed("rest:somebody", "reply"))
        await bob_on_a.close()
        await frame_where(on_a, presence("Alice"))  # this worker's own presence
        assert time.monotonic() - started < 5
        for _ in range(3):  # more failures say nothing more
            await hub.publish("rest:somebody", "note", "Alice")
            assert await hub.everyone() == ["Alice"]
        lost = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert 1 <= len(lost) <= 2, lost  # said once (by each worker), not per failure

        redis_server.start()
        await joined(a, b)
        await frame_where(on_a, lambda f: f.get("what") == "resync", timeout=15)
        assert any("is back" in r.getMessage() for r in caplog.records)
        await ask_for_person(b, "after")  # a customer on B again reaches the desk on A
        await frame_where(on_a, changed("rest:after", "message"), timeout=10)
    finally:
        if redis_server.process is None:
            redis_server.start()
        await bob_on_a.close()
        await on_a.close()
        await alice.close()
        await bob.close()
