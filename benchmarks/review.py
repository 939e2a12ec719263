"""The lead's view on a month of acme_bank traffic: marks reach the gate and the suggestions,
the dashboard's numbers equal the events table's, and how fast the dashboard answers.

    .venv/bin/python -m benchmarks.review           # ~5 min on 2 cores (it trains a copy)

A copy of acme_bank is trained, then served in this process. Customers ask the 150 blind
questions of ``eval/customer_questions_blind.yaml`` (their labels known) over and over as
new senders: 2,000 turns or more, some conversations with a second question, a typed thumbs
down or a request for a person. The events are then spread over the last 30 days (each
conversation kept together). Alice, the example's lead, signs in at ``/desk`` and marks
answers through the review API: each answer whose question's label names one entry, wrong
when it cited another (with the labelled entry) and right when it cited that one. Then:

- ``in_gate``: the marks the gate's yardstick reads (``mark-N`` questions), of ``marks``;
- ``suggestions``: the suggestions whose examples are review marks (``bot suggest`` after
  importing acme_bank's history);
- ``dashboard_matches_events``: the dashboard API's turns, conversations, fallbacks,
  handoffs and thumbs equal what plain SQL over the events table counts;
- ``dashboard_p50_ms``: the dashboard page, 20 loads after one warm-up.

Writes ``results/review.json`` (exactly the issue's keys) and ``results/review_details.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer

from benchmarks.report import write_results
from bot.cli import main as bot
from bot.definition.loader import load_bot
from bot.learning.marks import review_marks
from bot.runtime import BotRuntime
from bot.server.app import create_app
from bot.server.pipeline import PIPELINE
from bot.versions.measuring import yardstick
from foundation.messages import UserMessage

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "review.json"
CREDENTIAL = "benchmark-lead-credential-0123"
DAY = 86400.0
BLIND = Path("eval") / "customer_questions_blind.yaml"  # the gate's held-out set


def labelled(bot_root: Path) -> list[tuple[str, str | None]]:
    """The blind questions and the one entry that answers each (None: several or none)."""
    items = yaml.safe_load((bot_root / BLIND).read_text(encoding="utf-8"))
    found = []
    for item in items:
        expect = [str(e) for e in item.get("expect") or []]
        entry = expect[0] if len(expect) == 1 and expect[0] != "none" else None
        found.append((str(item["turns"][-1]), entry))
    return found


async def seed(client: TestClient, questions: list[tuple[str, str | None]],
               turns: int) -> int:
    """Customers ask until ``turns`` turns were served; the number served."""
    pipeline = client.app[PIPELINE]
    served, n = 0, 0
    while served < turns:
        sender, (text, _) = f"customer-{n}", questions[n % len(questions)]
        said = [text]
        if n % 3 == 0:
            said.append(questions[(n * 7 + 1) % len(questions)][0])
        if n % 11 == 0:
            said.append("\U0001f44e")  # a typed thumbs down: a rating, not a turn
        if n % 17 == 0:
            said.append("can I talk to a person please")
        for message in said:
            await pipeline.handle(UserMessage(sender=sender, text=message, channel="rest"))
            served += message != "\U0001f44e"
        n += 1
    return served


def spread(database: Path, days: int = 30) -> tuple[float, float]:
    """Move every conversation's events into the last ``days`` days, one conversation a
    slot; the range covered."""
    now = time.time()
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT id, key, ts FROM events ORDER BY id").fetchall()
        first: dict[str, float] = {}
        keys = list(dict.fromkeys(key for _, key, _ in rows))
        slot = {key: n for n, key in enumerate(keys)}
        for event_id, key, ts in rows:
            start = first.setdefault(key, ts)
            moved = now - days * DAY + slot[key] * (days * DAY - 3600) / max(1, len(keys)) \
                + (ts - start)
            db.execute("UPDATE events SET ts = ? WHERE id = ?", (moved, event_id))
    return now - days * DAY, now


def counted(database: Path, since: float, until: float) -> dict[str, int]:
    """What plain SQL over the events table says about the range."""
    window = (since, until)
    with sqlite3.connect(database) as db:
        turns = db.execute("SELECT data FROM events WHERE kind = 'turn' AND ts >= ? AND ts < ?",
                           window).fetchall()
        ratings = db.execute("SELECT data FROM events WHERE kind = 'feedback' AND ts >= ? "
                             "AND ts < ?", window).fetchall()
        keys = db.execute("SELECT COUNT(DISTINCT key) FROM events WHERE kind = 'turn' AND "
                          "ts >= ? AND ts < ?", window).fetchone()[0]
        handed = db.execute("SELECT COUNT(DISTINCT key) FROM events WHERE kind = 'turn' AND "
                            "ts >= ? AND ts < ? AND json_extract(data, '$.handoff')",
                            window).fetchone()[0]
    kinds = [json.loads(d)["kind"] for (d,) in turns]
    return {"turns": len(kinds), "conversations": keys,
            "fallbacks": sum(k == "fallback" for k in kinds), "handed_off": handed,
            "thumbs_down": sum(json.loads(d).get("rating") == "down" for (d,) in ratings)}


async def lead_session(client: TestClient) -> tuple[str, dict[str, str]]:
    """Sign Alice in: her CSRF token and the headers of a state-changing request."""
    await client.post("/desk/sign-in", data={"name": "Alice", "credential": CREDENTIAL},
                      allow_redirects=False)
    page = await (await client.get("/desk/review")).text()
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1), {"X-CSRF-Token": found.group(1), "Origin": str(client.make_url(""))}


async def mark_all(client: TestClient, headers: dict[str, str],
                   labels: dict[str, str | None], since: float, until: float) -> int:
    """Mark each answer whose question has one labelled entry; the marks made."""
    day = time.strftime("%Y-%m-%d", time.gmtime(since))
    last = time.strftime("%Y-%m-%d", time.gmtime(until))
    marks, offset = 0, 0
    while True:
        listing = await (await client.get("/desk/api/review/answers", params={
            "from": day, "to": last, "offset": str(offset)})).json()
        for answer in listing["answers"]:
            entry = labels.get(answer["question"])
            if entry is None or answer["abstained"] or answer["mark"] is not None:
                continue
            wrong = entry not in answer["citations"]
            body = {"key": answer["key"], "ts": answer["ts"],
                    "mark": "wrong" if wrong else "right", **({"answer": entry} if wrong else {})}
            response = await client.post("/desk/api/review/mark", json=body, headers=headers)
            assert response.status == 200, await response.text()
            marks += 1
        offset += len(listing["answers"])
        if not listing["answers"] or offset >= listing["total"]:
            return marks


async def run(work: Path, turns: int) -> dict[str, Any]:
    loaded = load_bot(work)  # one client here: the per-IP and per-sender limits are off
    security = dataclasses.replace(loaded.config.security, ip_rate_limit=None,
                                   sender_rate_limit=None)
    bot_def = dataclasses.replace(loaded, config=dataclasses.replace(loaded.config,
                                                                      security=security))
    questions = labelled(work)
    runtime = BotRuntime.load(bot_def)
    client = TestClient(TestServer(create_app(bot_def, runtime=runtime), host="127.0.0.1"))
    await client.start_server()
    try:
        started = time.perf_counter()
        served = await seed(client, questions, turns)
        seed_s = time.perf_counter() - started
        database = bot_def.path(bot_def.config.sessions.path)
        since, until = spread(database)
        _, headers = await lead_session(client)
        marks = await mark_all(client, headers, dict(questions), since, until)
        day = {"from": time.strftime("%Y-%m-%d", time.gmtime(since)),
               "to": time.strftime("%Y-%m-%d", time.gmtime(until))}
        api = (await (await client.get("/desk/api/dashboard", params=day)).json())["figures"]
        expected = counted(database, since, until)
        shown = {k: api[k] for k in expected}
        await client.get("/desk/dashboard", params=day)  # warm-up: the gaps' vectors
        times = []
        for _ in range(20):
            began = time.perf_counter()
            response = await client.get("/desk/dashboard", params=day)
            await response.read()
            times.append((time.perf_counter() - began) * 1000)
    finally:
        await client.close()
        await runtime.close()
    return {"served": served, "seed_s": round(seed_s, 1), "marks": marks,
            "dashboard": shown, "events": expected, "dashboard_ms": [round(t, 1) for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ["ALICE_CREDENTIAL"] = CREDENTIAL
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="supportbot-review-") as tmp:
        work = Path(tmp) / args.bot.name
        shutil.copytree(args.bot, work, ignore=shutil.ignore_patterns(
            ".bot", "conversations", "suggestions"))
        assert bot(["train", str(work)]) == 0
        found = asyncio.run(run(work, args.turns))
        in_gate = sum(c.id.startswith("mark-") for c in yardstick(load_bot(work)).cases())
        stored = len(review_marks(load_bot(work)))
        assert bot(["import", str(work), str(work / "history" / "past_conversations.jsonl")]) == 0
        assert bot(["suggest", str(work)]) == 0
        suggestions = sum(
            any(e.get("source") == "review mark" for e in
                (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("examples") or [])
            for p in (work / "suggestions").glob("*.yaml"))
    figures = {"marks": found["marks"], "in_gate": in_gate, "suggestions": suggestions,
               "dashboard_matches_events": found["dashboard"] == found["events"],
               "dashboard_p50_ms": round(statistics.median(found["dashboard_ms"]), 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    write_results(args.out.with_name(args.out.stem + "_details.json"), {
        **figures, **found, "stored_marks": stored,
        "command": "python -m benchmarks.review " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_average": load_start}})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
