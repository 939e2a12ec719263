from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.build import train
from bot.definition.loader import load_bot
from bot.server.app import RUNTIME, create_app

from ..conftest import MakeBot


async def client_for(root: Path) -> TestClient:  # type: ignore[type-arg]
    client = TestClient(TestServer(create_app(load_bot(root))))
    await client.start_server()
    return client


async def test_rest_endpoint_answers_with_citation(make_bot: MakeBot) -> None:
    root = make_bot()
    train(load_bot(root), progress=False)
    client = await client_for(root)
    try:
        response = await client.post("/webhooks/rest",
                                     json={"sender": "u1", "message": "my card has not arrived"})
        assert response.status == 200
        (reply,) = await response.json()
        assert reply["recipient_id"] == "u1" and reply["kind"] == "faq"
        assert reply["citations"][0]["passage_id"] == "card-not-arrived"
        health = await (await client.get("/health")).json()
        assert health == {"status": "ok", "bot": "test_bot", "store": "ok", "faq_passages": 3,
                          "version": None}
        page = await (await client.get("/")).text()
        assert "Ava · test_bot" in page and "<code>webchat: {}</code>" in page
        assert "widget.js" not in page  # no webchat channel: the page says how to add it
    finally:
        await client.close()


async def test_session_persists_across_server_restart(make_bot: MakeBot) -> None:
    root = make_bot()
    train(load_bot(root), progress=False)
    client = await client_for(root)
    await client.post("/webhooks/rest", json={"sender": "u9", "message": "reset my pin"})
    await client.close()

    client = await client_for(root)  # a new app and runtime on the same SQLite file
    try:
        await client.post("/webhooks/rest", json={"sender": "u9", "message": "transfer time?"})
        runtime = client.app[RUNTIME]  # type: ignore[index]
        session = await runtime.store.get("rest:u9", channel="rest", sender="u9")
        assert [t["text"] for t in session.history if t["role"] == "user"] == \
            ["reset my pin", "transfer time?"]
    finally:
        await client.close()


async def test_bad_requests_get_clear_errors_and_store_nothing(make_bot: MakeBot) -> None:
    root = make_bot()
    train(load_bot(root), progress=False)
    client = await client_for(root)
    try:
        cases = [
            (b'{"sender": "u1",', 400, "not valid JSON"),
            (b"[1, 2]", 400, "must be a JSON object"),
            (b'{"message": "hi"}', 400, "'sender' is required"),
            (b'{"sender": "bad"}', 400, "'message' is required"),
            (b'{"sender": "bad", "message": "\\u0000\\u0001"}', 400, "binary"),
            (b"\xff\xfe\x00\x01", 400, "not UTF-8"),
            (b'{"sender": "bad", "message": "' + b"a" * 70_000 + b'"}', 413, "too large"),
        ]
        for body, status, text in cases:
            response = await client.post("/webhooks/rest", data=body,
                                         headers={"Content-Type": "application/json"})
            assert response.status == status, body[:40]
            assert text in (await response.json())["error"]
        runtime = client.app[RUNTIME]  # type: ignore[index]
        assert (await runtime.store.get("rest:bad", channel="rest", sender="bad")).history == []
    finally:
        await client.close()


async def test_missing_index_fails_at_startup_with_clear_error(make_bot: MakeBot) -> None:
    import pytest

    from bot.errors import RetrievalError

    client = TestClient(TestServer(create_app(load_bot(make_bot()))))
    with pytest.raises(RetrievalError, match="run `bot train`"):
        await client.start_server()
    await client.close()
