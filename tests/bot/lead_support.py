"""Helpers for the lead's pages: a desk bot with a lead, and the dashboard's numbers
computed straight from the events table (independently of ``bot/insights/``)."""

from __future__ import annotations

import json
import sqlite3
import statistics
from pathlib import Path
from typing import Any

from .desk_support import DESK_BOT

LEAD_BOT = DESK_BOT + "  leads: [Alice]\n"


def numbers_from_events(database: Path, since: float, until: float,
                        ttl_s: float) -> dict[str, Any]:
    """The dashboard's numbers, read with SQL from the store's ``events`` table."""
    db = sqlite3.connect(database)
    try:
        rows = db.execute("SELECT key, ts, kind, data FROM events WHERE ts >= ? AND ts < ? "
                          "ORDER BY id", (since, until)).fetchall()
        marks = db.execute("SELECT key, data FROM events WHERE kind = 'review_mark' "
                           "ORDER BY id").fetchall()
    finally:
        db.close()
    turns = [(k, ts, json.loads(d)) for k, ts, kind, d in rows if kind == "turn"]
    latest = {(k, json.loads(d)["turn_ts"]): json.loads(d)["mark"] for k, d in marks}
    runs: dict[str, list[list[tuple[float, bool]]]] = {}
    for key, ts, data in turns:
        mine = runs.setdefault(key, [])
        if not mine or ts - mine[-1][-1][0] > ttl_s:
            mine.append([])
        mine[-1].append((ts, bool(data.get("handoff"))))
    conversations = [run for mine in runs.values() for run in mine]
    handed = sum(any(h for _, h in run) for run in conversations)
    votes = [json.loads(d)["rating"] for _, _, kind, d in rows if kind == "feedback"]
    up, down = votes.count("up"), votes.count("down")
    reviewed = [latest[(k, ts)] for k, ts, _ in turns if (k, ts) in latest]
    fallbacks = sum(d.get("kind") == "fallback" for _, _, d in turns)
    n = len(conversations)
    return {"turns": len(turns), "conversations": n, "handed_off": handed,
            "resolved_by_bot": n - handed,
            "resolved_share": (n - handed) / n if n else None,
            "handoff_rate": handed / n if n else None, "fallbacks": fallbacks,
            "fallback_rate": fallbacks / len(turns) if turns else None,
            "reviewed": len(reviewed),
            "marked_wrong": sum(m in ("wrong", "should_not_answer") for m in reviewed),
            "thumbs_up": up, "thumbs_down": down,
            "satisfaction": up / (up + down) if up + down else None,
            "reply_ms_p50": round(statistics.median(d["ms"] for _, _, d in turns), 1)
            if turns else None}
