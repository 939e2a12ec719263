"""Prometheus metrics, request ids, JSON access logs and `bot stats`."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import main
from bot.definition.loader import load_bot
from bot.evaluation.stats import Stats, collect, plot, summary
from bot.server.logs import JsonFormatter
from bot.sessions.factory import open_session_store
from tests.local_redis import LocalRedis

from ..conftest import MakeBot
from .production_support import LIGHT_BOT, client_for, redis_server, redis_sessions
from .test_security import LeakyRouter, leaky_client

__all__ = ["redis_server"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "bot"))
            found[(sample.name, labels)] = sample.value
    return found


async def test_metrics_count_turns_per_app_with_model_time(make_bot: MakeBot) -> None:
    root = make_bot(LIGHT_BOT, files={})
    first = await leaky_client(root, LeakyRouter({}))
    second = await client_for(root)
    try:
        for _ in range(2):
            await first.post("/webhooks/rest", json={"sender": "u", "message": "hello"})
        await second.post("/webhooks/rest", json={"sender": "u", "message": "hello"})
        await second.post("/webhooks/rest", data=b"not json")
        one = samples(await (await first.get("/metrics")).text())
        two = samples(await (await second.get("/metrics")).text())
        assert one[("supportbot_turns_total", (("channel", "rest"), ("kind", "generated")))] == 2
        assert one[("supportbot_turn_seconds_count", (("channel", "rest"),))] == 2
        assert one[("supportbot_model_seconds_count", (("model", "fake-generation"),))] == 2
        assert two[("supportbot_turns_total", (("channel", "rest"), ("kind", "fallback")))] == 1
        assert two[("supportbot_fallbacks_total", (("channel", "rest"),))] == 1
        rest = (("method", "POST"), ("route", "/webhooks/rest"))
        assert two[("supportbot_http_requests_total", (*rest, ("status", "400")))] == 1
        assert ("supportbot_turns_total", (("channel", "rest"), ("kind", "fallback"))) not in one
    finally:
        await first.close()
        await second.close()


async def test_request_ids_are_echoed_or_made_and_logged_as_json(make_bot: MakeBot) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("bot.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    client = await client_for(make_bot(LIGHT_BOT, files={}))
    try:
        given = await client.post("/webhooks/rest", json={"sender": "u", "message": "hi"},
                                  headers={"X-Request-Id": "abc-123"})
        assert given.headers["X-Request-Id"] == "abc-123"
        odd = await client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"})
        made = odd.headers["X-Request-Id"]
        assert made != "bad id\twith spaces" and len(made) == 32
        missing = await client.get("/no/such/page")
        assert missing.status == 404 and missing.headers["X-Request-Id"]
        bad = await client.post("/webhooks/rest", data=b"{")
        assert bad.status == 400 and bad.headers["X-Request-Id"]
    finally:
        await client.close()
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    first = lines[0]
    assert first["request_id"] == "abc-123" and first["status"] == 200
    assert first["path"] == "/webhooks/rest" and first["logger"] == "bot.access"
    assert [line["status"] for line in lines] == [200, 200, 404, 400]


async def _log_days(store: object, now: float) -> None:
    """Two days of turns and feedback, written with explicit clocks."""
    day = 86400
    events = [
        (now - day, "turn", {"kind": "faq", "intent": None}),
        (now - day, "turn", {"kind": "fallback", "intent": None}),
        (now - day, "feedback", {"rating": "up"}),
        (now, "turn", {"kind": "intent", "intent": "greet"}),
        (now, "turn", {"kind": "intent", "intent": "greet"}),
        (now, "turn", {"kind": "fallback", "intent": None, "handoff": True}),
        (now, "turn", {"kind": "faq", "intent": None}),
        (now, "feedback", {"rating": "up"}),
        (now, "feedback", {"rating": "down"}),
    ]
    for ts, kind, data in events:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "time", lambda ts=ts: ts)
            await store.log_event(f"rest:u{int(ts) % 7}", kind, data)  # type: ignore[attr-defined]


def test_bot_stats_writes_plots_and_summary(make_bot: MakeBot, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(LIGHT_BOT, files={})

    async def write() -> None:
        store = open_session_store(load_bot(root))
        await _log_days(store, time.time())
        await store.close()

    asyncio.run(write())
    out = tmp_path / "stats"
    assert main(["stats", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 turns" in printed and "fallback rate 33.3 %" in printed
    assert "satisfaction 66.7 % (2 up, 1 down)" in printed and "handoffs 1" in printed
    intents = printed.split("top intents:\n")[1].split("reply kinds:")[0]
    kinds = printed.split("reply kinds:\n")[1].split("per day")[0]
    assert intents.split() == ["greet", "2"]  # intents and reply kinds apart
    assert dict(zip(kinds.split()[::2], map(int, kinds.split()[1::2]), strict=True)) == \
        {"faq": 2, "fallback": 2, "intent": 2}
    for name in ("intents_over_time.png", "fallback_satisfaction.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.txt").read_text().strip() == printed.split("\nwrote ")[0].strip()


def test_stats_plots_span_the_days_of_the_data(tmp_path: Path) -> None:
    import matplotlib.dates as mdates
    from matplotlib import pyplot

    stats = Stats()
    day = stats.day(time.time())
    day.turns, day.intents["greet"], day.kinds["intent"] = 3, 3, 3
    shown: list[tuple[float, float]] = []
    real_savefig = pyplot.Figure.savefig

    def record(fig: Any, *args: Any, **kwargs: Any) -> None:
        shown.extend(ax.get_xlim() for ax in fig.axes)
        real_savefig(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pyplot.Figure, "savefig", record)
        plot(stats, tmp_path, "b")
    today = mdates.date2num(sorted(stats.days)[0])
    assert shown and all((low, high) == (today - 1, today + 1) for low, high in shown)


async def test_stats_read_the_redis_event_stream(make_bot: MakeBot,
                                                 redis_server: LocalRedis) -> None:
    bot = load_bot(make_bot(LIGHT_BOT + redis_sessions(redis_server.url), files={}))
    store = open_session_store(bot)
    try:
        await _log_days(store, time.time())
        stats = await collect(store)
    finally:
        await store.close()
    assert len(stats.days) == 2 and stats.total().turns == 6
    assert "fallback rate 33.3 %" in summary(stats, "light_bot")
