"""The lead's pages over HTTP: who may see them (401, 403), bad input (400 naming it), a
mark stored as an event that the gate's yardstick and `bot suggest` read, and dashboard
numbers equal to the events table's."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.definition.loader import load_bot
from bot.errors import ConfigError
from bot.learning.marks import review_marks
from bot.runtime import BotRuntime
from bot.versions.measuring import yardstick
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .desk_support import ALICE_SECRET, BOB_SECRET, base_url, make_desk_bot, sign_in
from .dialogue_support import FakeAnalyzer, client_for, runtime_for
from .lead_support import LEAD_BOT, numbers_from_events

FORGOT = "I forgot the four digit code for my card"
TODAY = dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture
async def served(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
                 embedder: SentenceEmbedder) -> AsyncIterator[tuple[BotRuntime, TestClient]]:  # type: ignore[type-arg]
    root = make_desk_bot(make_bot, monkeypatch, bot_yaml=LEAD_BOT)
    runtime = runtime_for(root, embedder, FakeAnalyzer())
    client = await client_for(runtime)
    yield runtime, client
    await client.close()


async def ask(client: TestClient, sender: str, text: str) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await client.post("/webhooks/rest", json={"sender": sender, "message": text})
    (reply,) = await response.json()
    return dict(reply)


def test_leads_must_be_agents(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_desk_bot(make_bot, monkeypatch, bot_yaml=LEAD_BOT.replace("[Alice]",
                                                                         "[Alice, Carol]"))
    with pytest.raises(ConfigError, match=r"handoff.*'Carol' must be names of handoff.agents"):
        load_bot(root)


async def test_only_leads_see_the_pages(served: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = served
    for path in ("/desk/api/review/answers", "/desk/api/review/entries",
                 "/desk/api/dashboard"):
        response = await client.get(path)
        assert response.status == 401, path
    for path in ("/desk/review", "/desk/dashboard"):
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/desk/sign-in")
    bob = await sign_in(base_url(client), "Bob", BOB_SECRET)
    alice = await sign_in(base_url(client), "Alice", ALICE_SECRET)
    try:
        for path in ("/desk/api/review/answers", "/desk/api/dashboard", "/desk/review",
                     "/desk/dashboard"):
            response = await bob.get(path)
            assert response.status == 403, path
            assert "not a lead" in await response.text()
        response = await bob.post("/desk/api/review/mark", {"key": "rest:x", "ts": 1,
                                                            "mark": "right"})
        assert response.status == 403
        response = await alice.post("/desk/api/review/mark", {"key": "rest:x", "ts": 1,
                                                              "mark": "right"},
                                    **{"X-CSRF-Token": "forged"})
        assert response.status == 403 and "X-CSRF-Token" in (await response.json())["error"]
        assert (await alice.get("/desk/review")).status == 200
        desks = [await (await agent.get("/desk")).text() for agent in (alice, bob)]
        assert '<body data-lead="true">' in desks[0]  # the desk links a lead to her pages
        assert '<body data-lead="">' in desks[1] and 'href="/desk/review"' in desks[1]
        assert (await alice.get("/desk/lead/static/review.js")).status == 200
        assert (await alice.get("/desk/lead/static/secrets.txt")).status == 404
    finally:
        await bob.close()
        await alice.close()


async def test_bad_input_gets_a_clear_400(served: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = served
    await ask(client, "c1", FORGOT)
    alice = await sign_in(base_url(client), "Alice", ALICE_SECRET)
    try:
        for query, says in (("from=yesterday", "'from' must be a date"),
                            ("from=2026-02-10&to=2026-02-01", "is after"),
                            ("from=2020-01-01&to=2026-01-01", "at most 366 days"),
                            ("show=everything", "'show' may hold"),
                            ("below=2", "'below' must be a number from 0 to 1"),
                            ("offset=-1", "'offset'")):
            response = await alice.get(f"/desk/api/review/answers?{query}")
            assert response.status == 400, query
            assert says in (await response.json())["error"], query
        assert (await alice.get("/desk/api/dashboard?to=31-12-2026")).status == 400
        (row,) = (await (await alice.get("/desk/api/review/answers")).json())["answers"]
        for body, says in (({"key": row["key"], "ts": row["ts"], "mark": "meh"},
                            "'mark' must be one of right, wrong, should_not_answer"),
                           ({"key": row["key"], "ts": row["ts"], "mark": "wrong"},
                            "a wrong answer needs 'answer'"),
                           ({"key": row["key"], "ts": row["ts"], "mark": "wrong",
                             "answer": "no-such-entry"}, "names no entry of the served FAQ"),
                           ({"key": row["key"], "ts": "soon", "mark": "right"}, "'ts' must be"),
                           ({"ts": row["ts"], "mark": "right"}, "'key' is required")):
            response = await alice.post("/desk/api/review/mark", body)
            assert response.status == 400, body
            assert says in (await response.json())["error"]
        response = await alice.post("/desk/api/review/mark", {"key": row["key"],
                                                              "ts": row["ts"] + 1,
                                                              "mark": "right"})
        assert response.status == 404
        response = await alice.post("/desk/api/review/mark", "[1, 2")
        assert response.status == 400
    finally:
        await alice.close()


async def test_a_mark_reaches_the_gate_and_the_dashboard_matches_the_events(
        served: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    runtime, client = served
    reply = await ask(client, "c1", FORGOT)
    assert [c["passage_id"] for c in reply["citations"]] == ["card-not-arrived"]
    await ask(client, "c1", "How long does a bank transfer take?")
    await ask(client, "c2", "do you sell car insurance for my boat")
    await ask(client, "c3", "I want to talk to a person")
    response = await client.post("/webhooks/rest/feedback", json={"sender": "c1",
                                                                  "reply_index": 0,
                                                                  "rating": "down"})
    assert response.status == 200
    alice = await sign_in(base_url(client), "Alice", ALICE_SECRET)
    try:
        found = await (await alice.get("/desk/api/review/answers?show=down")).json()
        (row,) = found["answers"]
        assert (row["question"], row["rating"]) == (FORGOT, "down")
        assert row["cited"] == [{"id": "card-not-arrived", "title": "My card has not arrived yet"}]
        entries = await (await alice.get("/desk/api/review/entries?q=pin")).json()
        assert [e["id"] for e in entries["entries"]] == ["reset-pin"]
        response = await alice.post("/desk/api/review/mark", {
            "key": row["key"], "ts": row["ts"], "mark": "wrong", "answer": "reset-pin"})
        assert response.status == 200, await response.text()
        assert (await response.json())["mark"]["by"] == "Alice"
        abstained = await (await alice.get("/desk/api/review/answers?show=abstained")).json()
        assert [a["question"] for a in abstained["answers"]] == \
            ["do you sell car insurance for my boat"]
        unmarked = await (await alice.get("/desk/api/review/answers?show=unmarked")).json()
        assert FORGOT not in [a["question"] for a in unmarked["answers"]]
        dashboard = await (await alice.get("/desk/api/dashboard")).json()
        page = await (await alice.get("/desk/dashboard")).text()
    finally:
        await alice.close()
    bot = runtime.bot
    (mark,) = await asyncio.to_thread(review_marks, bot)  # as `bot train` reads them
    assert (mark.question, mark.mark, mark.answer, mark.answered, mark.by) == \
        (FORGOT, "wrong", "reset-pin", ("card-not-arrived",), "Alice")
    cases = (await asyncio.to_thread(yardstick, bot)).cases()
    assert [(c.id, c.turns, c.expect) for c in cases] == \
        [("mark-1", (FORGOT,), (("reset-pin",),))]
    today = dt.datetime.now(dt.UTC).date()
    since = dt.datetime.combine(today - dt.timedelta(days=29), dt.time(),
                                tzinfo=dt.UTC).timestamp()
    expected = numbers_from_events(bot.path(bot.config.sessions.path), since, time.time() + 1,
                                   bot.config.sessions.ttl_minutes * 60)
    got = {k: dashboard["figures"][k] for k in expected}
    assert got == expected
    assert (expected["conversations"], expected["handed_off"], expected["marked_wrong"],
            expected["thumbs_down"]) == (3, 1, 1, 1)
    assert dashboard["gaps"][0]["examples"] == ["do you sell car insurance for my boat"]
    assert 'data-figure="conversations" data-value="3"' in page
    assert "<svg" in page and "Conversations per day" in page


def test_stored_marks_need_no_store_file(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    bot = load_bot(make_desk_bot(make_bot, monkeypatch, bot_yaml=LEAD_BOT))
    assert review_marks(bot) == []
    assert not bot.path(bot.config.sessions.path).exists()  # reading created nothing
