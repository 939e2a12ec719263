"""A handed-off conversation as the desk shows it: the customer's messages, the bot's
answers with their citations and the answer decision's evidence, agents' replies, and the
agents' private notes, oldest first.

The history keeps each bot answer's passage ids; the ``turn`` event logged after it keeps
its decision; notes are ``agent_note`` events. None of it is sent to the customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sessions.events import AGENT_NOTE_EVENT, TURN_EVENT
from bot.sessions.store import Session, SessionStore
from retrieval.passages import Passage

MAX_EVENTS = 2000  # a conversation's events read for one transcript, newest kept


def citation(passage_id: str, passages: Mapping[str, Passage]) -> dict[str, Any]:
    """A cited passage by id: its title, source and audience (the id alone when it is gone)."""
    passage = passages.get(passage_id)
    if passage is None:  # retrained away since: the id is all there is
        return {"id": passage_id, "title": passage_id, "source": None}
    return {"id": passage_id, "title": passage.question or passage.title or passage_id,
            "source": passage.source, "audience": passage.audience}


def _decisions(events: list[dict[str, Any]], bot_times: list[float]) -> list[Any]:
    """The decision of each bot answer: the first turn event logged after it (and before
    the next answer), None where there is none."""
    turns = [e for e in events if e["kind"] == TURN_EVENT]
    found: list[Any] = []
    for i, at in enumerate(bot_times):
        until = bot_times[i + 1] if i + 1 < len(bot_times) else float("inf")
        event = next((e for e in turns if at <= e["ts"] < until), None)
        found.append(event["data"].get("decision") if event else None)
    return found


def _item(turn: dict[str, Any], passages: Mapping[str, Passage]) -> dict[str, Any]:
    role = str(turn.get("role"))
    item: dict[str, Any] = {"role": role, "text": str(turn.get("text", "")),
                            "ts": turn.get("ts")}
    if role == "bot":
        item["kind"] = turn.get("kind")
        item["citations"] = [citation(str(c), passages) for c in turn.get("citations") or ()]
    if role == "agent":
        item["agent"] = turn.get("agent")
    return item


def customer_turns(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history without the copies of queued agent messages that the bot delivered
    later (each is kept once, where the agent wrote it)."""
    return [t for t in history if not (t.get("role") == "bot" and t.get("kind") == "agent")]


async def transcript(store: SessionStore, session: Session,
                     passages: Mapping[str, Passage]) -> list[dict[str, Any]]:
    """The conversation's items, oldest first (see the module docstring)."""
    events = [e async for e in store.iter_events(key=session.key, since=session.started_at)]
    events = events[-MAX_EVENTS:]
    items = [_item(t, passages) for t in customer_turns(session.history)]
    answers = [i for i in items if i["role"] == "bot"]
    for item, decision in zip(answers, _decisions(events, [float(i["ts"] or 0)
                                                           for i in answers]), strict=True):
        if decision:
            item["decision"] = decision
    notes = [{"role": "note", "text": str(e["data"].get("text", "")), "ts": e["ts"],
              "agent": e["data"].get("agent")} for e in events if e["kind"] == AGENT_NOTE_EVENT]
    return sorted(items + notes, key=lambda i: float(i["ts"] or 0))
