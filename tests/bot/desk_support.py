"""Helpers for the desk tests: a small bot with two agents, signed-in agent clients."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.runtime import BotRuntime
from bot.server.app import RUNTIME
from retrieval.embedder import SentenceEmbedder

from ..conftest import BOT_YAML, FAQ_YAML, MakeBot
from .dialogue_support import FakeAnalyzer, client_for, runtime_for

ALICE_SECRET, BOB_SECRET = "alice-desk-credential-1", "bob-desk-credential-22"
DESK_BOT = BOT_YAML.replace("name: test_bot", "name: desk_bot") + """
  webchat: {title: Acme help}
handoff:
  agents:
    Alice: ${DESK_ALICE}
    Bob: ${DESK_BOB}
"""
ASK_FOR_PERSON = "I want to talk to a person"


def make_desk_bot(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, *,
                  bot_yaml: str = DESK_BOT) -> Path:
    monkeypatch.setenv("DESK_ALICE", ALICE_SECRET)
    monkeypatch.setenv("DESK_BOB", BOB_SECRET)
    return make_bot(bot_yaml, files={"faq/main.yaml": FAQ_YAML}, name="desk_bot")


@pytest.fixture
async def desk(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
               embedder: SentenceEmbedder) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    """The desk bot served on loopback (a fake analyzer; the real FAQ index and store)."""
    runtime: BotRuntime = runtime_for(make_desk_bot(make_bot, monkeypatch), embedder,
                                      FakeAnalyzer())
    client = await client_for(runtime)
    yield client
    await client.close()


@dataclass
class Agent:
    """A browser-like client of one agent: its own cookie jar and CSRF token."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""
    cookie: str = ""

    async def post(self, path: str, body: Any = None, **headers: str) -> aiohttp.ClientResponse:
        sent = {"X-CSRF-Token": self.csrf, **headers}
        return await self.http.post(self.base + path, json=body, headers=sent)

    async def get(self, path: str) -> aiohttp.ClientResponse:
        return await self.http.get(self.base + path)

    async def close(self) -> None:
        await self.http.close()


def base_url(client: TestClient) -> str:  # type: ignore[type-arg]
    return str(client.make_url("")).rstrip("/")


async def sign_in(base: str, name: str, credential: str) -> Agent:
    """An agent signed in through the form, with the CSRF token of the desk page."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    agent = Agent(base, http)
    response = await http.post(f"{base}/desk/sign-in", data={"name": name,
                                                            "credential": credential},
                               allow_redirects=False)
    assert response.status == 303, await response.text()
    agent.cookie = response.cookies["supportbot_desk"].value
    page = await (await http.get(f"{base}/desk")).text()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, page
    agent.csrf = found.group(1)
    return agent


async def ask_for_person(client: TestClient, sender: str) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await client.post("/webhooks/rest", json={"sender": sender,
                                                         "message": ASK_FOR_PERSON})
    (reply,) = await response.json()
    assert reply["handoff"] is True, reply
    return dict(reply)


async def race_to_take(alice: Agent, bob: Agent, sender: str,
                       workers: list[TestClient]) -> str:  # type: ignore[type-arg]
    """Alice and Bob take ``rest:sender`` at once: exactly one wins, the other is told who,
    and every worker's store holds the winner; returns the winner's name."""
    body = {"id": f"rest:{sender}"}
    results = await asyncio.gather(alice.post("/desk/api/take", body),
                                   bob.post("/desk/api/take", body))
    assert sorted(r.status for r in results) == [200, 409], sender
    winner = "Alice" if results[0].status == 200 else "Bob"
    loser = results[1] if winner == "Alice" else results[0]
    assert winner in (await loser.json())["error"]
    for worker in workers:  # both workers' stores agree on who won
        session = await worker.app[RUNTIME].store.get(
            f"rest:{sender}", channel="rest", sender=sender)
        assert session.state["handoff"]["agent"] == winner
    return winner


async def visitor(client: TestClient) -> tuple[str, str]:  # type: ignore[type-arg]
    """A new widget visitor: its session token and sender."""
    body = await (await client.post("/webhooks/webchat/session")).json()
    return body["token"], body["sender"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def widget_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next ``reply`` frame of a widget's socket."""
    while (frame := json.loads((await asyncio.wait_for(ws.receive(), 10)).data))["type"] \
            != "reply":
        assert frame["type"] in ("typing", "delta", "ready"), frame
    return dict(frame)
