"""One pass over the session store's events of a date range: the bot's answers (a ``turn``
event each, with its question and answer text), their thumbs (``feedback``) and review
marks (``review_mark``), and what agents did (``agent_reply``, ``handoff_resolved``,
``handoff_released``)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.learning.marks import Mark, stored_marks
from bot.sessions.events import (
    AGENT_REPLY_EVENT,
    FEEDBACK_EVENT,
    HANDOFF_RELEASED_EVENT,
    HANDOFF_RESOLVED_EVENT,
    TURN_EVENT,
)
from bot.sessions.store import SessionStore

ABSTAINED = ("fallback", "clarify")  # the bot did not answer: "I don't know", "A or B?"
NOT_ANSWERS = ("agent", "agent_joined", "agent_left", "feedback")  # not the bot's own words
_UP = {"up", "positive", "good", "+1", "1", "true", "yes"}
_DOWN = {"down", "negative", "bad", "-1", "0", "false", "no"}


def rating(data: Mapping[str, Any]) -> bool | None:
    """True for a thumbs-up, False for a thumbs-down, None when unreadable."""
    value = str(data.get("rating", "")).strip().lower()
    return True if value in _UP else False if value in _DOWN else None


@dataclass
class Answer:
    """One served turn: what the customer wrote and what the bot answered."""

    key: str  # the conversation
    ts: float  # the turn event's time: with the key, the answer's identity
    channel: str
    kind: str
    intent: str | None
    confidence: float | None
    handoff: bool
    question: str
    text: str
    citations: tuple[str, ...]
    ms: float | None
    rating: bool | None = None  # the latest thumbs on it
    mark: Mark | None = None  # the latest review mark

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Answer:
        data = event["data"]
        confidence = data.get("confidence")
        ms = data.get("ms")
        return cls(str(event["key"]), float(event["ts"]), str(data.get("channel") or ""),
                   str(data.get("kind") or "unknown"), data.get("intent") or None,
                   float(confidence) if isinstance(confidence, int | float) else None,
                   bool(data.get("handoff")), str(data.get("question") or ""),
                   str(data.get("answer") or ""),
                   tuple(str(c) for c in data.get("citations") or ()),
                   float(ms) if isinstance(ms, int | float) else None)

    @property
    def abstained(self) -> bool:
        return self.kind in ABSTAINED

    @property
    def reviewable(self) -> bool:
        """The bot's own answer to a recorded question."""
        return bool(self.question and self.text) and self.kind not in NOT_ANSWERS

    def to_json(self) -> dict[str, Any]:
        mark = self.mark
        return {"key": self.key, "ts": self.ts, "channel": self.channel, "kind": self.kind,
                "intent": self.intent, "confidence": self.confidence, "handoff": self.handoff,
                "question": self.question, "answer": self.text,
                "citations": list(self.citations), "abstained": self.abstained,
                "rating": None if self.rating is None else "up" if self.rating else "down",
                "mark": None if mark is None else {"mark": mark.mark, "answer": mark.answer,
                                                   "by": mark.by, "at": mark.at}}


@dataclass
class Activity:
    """The events of ``[since, until)``, each list oldest first."""

    since: float
    until: float
    answers: list[Answer] = field(default_factory=list)
    ratings: list[tuple[str, float, bool]] = field(default_factory=list)  # key, ts, up
    agent_replies: dict[str, list[float]] = field(default_factory=dict)
    closings: dict[str, list[float]] = field(default_factory=dict)  # resolved or released

    def marks(self) -> list[Mark]:
        return [a.mark for a in self.answers if a.mark is not None]


async def read_activity(store: SessionStore, since: float, until: float) -> Activity:
    """Everything the lead's pages show for ``[since, until)`` (Unix times)."""
    found = Activity(since, until)
    by_key: dict[str, list[Answer]] = {}
    rated: list[tuple[str, float, bool]] = []  # key, the rated reply's time, up
    async for event in store.iter_events(since=since):
        ts, kind, key = float(event["ts"]), event["kind"], str(event["key"])
        if ts >= until:
            continue
        if kind == TURN_EVENT:
            answer = Answer.of(event)
            found.answers.append(answer)
            by_key.setdefault(key, []).append(answer)
        elif kind == FEEDBACK_EVENT and (vote := rating(event["data"])) is not None:
            found.ratings.append((key, ts, vote))
            rated.append((key, float(event["data"].get("turn_ts") or ts), vote))
        elif kind == AGENT_REPLY_EVENT:
            found.agent_replies.setdefault(key, []).append(ts)
        elif kind in (HANDOFF_RESOLVED_EVENT, HANDOFF_RELEASED_EVENT):
            found.closings.setdefault(key, []).append(ts)
    for key, at, vote in rated:  # the rated reply: the key's first turn logged after it
        answers = by_key.get(key, [])
        n = bisect.bisect_left([a.ts for a in answers], at)
        if n < len(answers):
            answers[n].rating = vote
    for (key, at), mark in (await stored_marks(store)).items():
        marked = next((a for a in by_key.get(key, []) if a.ts == at), None)
        if marked is not None:
            marked.mark = mark
    return found
