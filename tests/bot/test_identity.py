"""Identified customers: a host site signs who its customer is (HMAC-SHA256 of the user id
under ``webchat.identity_secret``); a valid identity is one conversation on every device, the
bot greets by name, forms skip what it knows, agents see it; a forged one is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.definition.loader import load_bot
from bot.errors import ConfigError
from bot.server.app import RUNTIME
from channels.signing import hmac_hex
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .desk_support import base_url, sign_in
from .dialogue_support import (
    ALICE,
    DIALOGUE_BOT,
    RESPONSES_YAML,
    FakeAnalyzer,
    backend,
    client_for,
    dialogue_files,
    runtime_for,
)

__all__ = ["backend"]
SECRET = "site-identity-secret-0123"
BOT = DIALOGUE_BOT.replace("  rest: {auth: none}\n", "  rest: {auth: none}\n  webchat:\n"
                           "    identity_secret: ${TEST_IDENTITY_SECRET}\n")
ANN = {"id": "cust-42", "name": "Ann Lee", "date_of_birth": "1990-04-12"}


def signed(user: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    return {**user, "hash": hmac_hex(secret, user["id"].encode())}


@pytest.fixture
async def client(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
                 embedder: SentenceEmbedder) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    monkeypatch.setenv("TEST_AGENT_TOKEN", "agent-secret-token-123")
    monkeypatch.setenv("TEST_IDENTITY_SECRET", SECRET)
    files = dialogue_files(backend)
    files["responses.yaml"] = RESPONSES_YAML.replace("Hello {{ sender }}!",
                                                     "Hello {{ user.name or 'there' }}!")
    runtime = runtime_for(make_bot(BOT, files=files), embedder, FakeAnalyzer())
    served = await client_for(runtime)
    yield served
    await served.close()


async def session_for(client: TestClient, body: Any = None,  # type: ignore[type-arg]
                      status: int = 200) -> dict[str, Any]:
    response = await client.post("/webhooks/webchat/session", json=body)
    assert response.status == status, await response.text()
    return dict(await response.json())


async def say(client: TestClient, token: str, text: str,  # type: ignore[type-arg]
              **extra: Any) -> dict[str, Any]:
    response = await client.post("/webhooks/webchat", json={"message": text, **extra},
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    return dict((await response.json())[0])


async def test_a_signed_customer_is_one_conversation_greeted_by_name_and_not_asked_again(
        client: TestClient) -> None:  # type: ignore[type-arg]
    phone = await session_for(client, {"user": signed(ANN)})
    laptop = await session_for(client, {"user": signed(ANN)})
    assert phone["sender"] == laptop["sender"] and phone["sender"].startswith("u-")
    assert phone["user"] == ANN  # without the hash
    assert "cust-42" not in phone["sender"]

    assert (await say(client, phone["token"], "hello"))["text"] == "Hello Ann Lee!"
    spoofed = await say(client, laptop["token"], "hello",  # metadata cannot say who it is
                        metadata={"identity": {"id": "x", "name": "Mallory"}})
    assert spoofed["text"] == "Hello Ann Lee!"
    anonymous = await session_for(client)
    assert (await say(client, anonymous["token"], "hello"))["text"] == "Hello there!"

    asked = await say(client, laptop["token"], "where is my card")
    assert asked["text"] == "What are the last 4 digits of the card?"
    done = await say(client, phone["token"], "4821")  # the date of birth is known already
    assert done["text"] == "Card 4821: delivered."

    history = await (await client.get("/webhooks/webchat/history", headers={
        "Authorization": f"Bearer {laptop['token']}"})).json()
    assert [m["text"] for m in history["messages"] if m["role"] == "user"] == [
        "hello", "hello", "where is my card", "4821"]  # both devices' messages
    assert history["user"] == ANN

    renewed = await client.post("/webhooks/webchat/session",
                                headers={"Authorization": f"Bearer {phone['token']}"})
    assert (await renewed.json())["user"] == ANN  # renewing keeps who it is

    await say(client, phone["token"], "I want to talk to a person")
    alice = await sign_in(base_url(client), "alice", ALICE)
    try:
        queues = await (await alice.get("/desk/api/queues")).json()
        (row,) = queues["waiting"]
        assert row["user"] == ANN and row["id"] == f"webchat:{phone['sender']}"
    finally:
        await alice.close()


async def test_an_unsigned_or_forged_identity_is_refused(
        client: TestClient) -> None:  # type: ignore[type-arg]
    for user, status, words in [
            (signed(ANN, secret="another-site-secret-000"), 403, "does not match"),
            ({**signed(ANN), "id": "cust-43"}, 403, "does not match"),
            (ANN, 400, "'user.hash' is required"),
            ("cust-42", 400, "'user' must be an object"),
            ({**signed(ANN), "Name": "x"}, 400, "'user.Name'"),
            ({**signed(ANN), "name": "a" * 201}, 400, "'user.name'"),
            ({"hash": "00"}, 400, "'user.id'")]:
        body = await session_for(client, {"user": user}, status=status)
        assert words in body["error"] and "token" not in body, user
    response = await client.post("/webhooks/webchat/session", data=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    store = client.app[RUNTIME].store
    assert await store.sessions_where("handoff.status", ["waiting"]) == []


async def test_identities_need_a_secret_from_the_environment(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> None:
    monkeypatch.setenv("TEST_AGENT_TOKEN", "agent-secret-token-123")
    for secret, words in [("literal-secret-in-yaml-1", "environment variable"),
                          ("${SHORT_SECRET}", "at least 16")]:
        monkeypatch.setenv("SHORT_SECRET", "short")
        yaml = BOT.replace("${TEST_IDENTITY_SECRET}", secret)
        with pytest.raises(ConfigError, match=words) as caught:
            load_bot(make_bot(yaml, files=dialogue_files("http://127.0.0.1:9")))
        assert "identity_secret" in str(caught.value) and "literal-secret" not in \
            str(caught.value)
    monkeypatch.setenv("UNSET_SECRET", "")  # unset: identified customers are refused
    yaml = BOT.replace("${TEST_IDENTITY_SECRET}", "${UNSET_SECRET:-}")
    served = await client_for(runtime_for(make_bot(yaml, files=dialogue_files(
        "http://127.0.0.1:9")), embedder, FakeAnalyzer()))
    try:
        body = await session_for(served, {"user": signed(ANN)}, status=403)
        assert "does not accept identified customers" in body["error"]
    finally:
        await served.close()
