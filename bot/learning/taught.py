"""Answers people gave become the dialogue adapter's training data at the next `bot train`.

Three sources, each a customer's question with a reply someone vouched for:

- ``imported``: past conversations (``bot import``): the question and the agent's reply;
- ``handoff``: the bot's own handoffs: what the customer asked and what the agent answered
  through the agent API (the ``agent_reply`` events of the session store);
- ``feedback``: replies customers rated thumbs-up, with the entry they cited.

Each is tied to the FAQ entry its reply states (the reply's embedding is close to that
entry's answer and clearly closer than to any other's), or dropped. The adapter then learns
that question answered from that entry: in the person's words when they say nothing the
entry does not (their content words are the entry's), otherwise in the entry's own words;
facts enter the bot only through FAQ entries a person reviewed (``bot suggest``). A
thumbs-down reply followed by an agent's answer is corrected by the handoff source.
Questions are deduplicated (the first source above wins); live ones count twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adapters.answering.evidence import content_words
from adapters.training.training_data import TaughtAnswer
from bot.definition.config import BotDefinition
from bot.errors import BotError
from bot.learning.exchanges import exchanges
from bot.learning.mining import MiningSettings
from bot.learning.transcripts import load_conversations
from bot.sessions.events import AGENT_REPLY_EVENT, FEEDBACK_EVENT
from bot.sessions.factory import open_session_store
from bot.sessions.store import SessionStore
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex

log = logging.getLogger(__name__)

GROUNDED = 0.8  # share of a reply's content words its entry has: it says only the entry
LIVE_WEIGHT = 2  # handoff and feedback answers are recent and checked by a person
SOURCES = ("imported", "handoff", "feedback")


@dataclass(frozen=True)
class Said:
    """A question and the reply someone vouched for (``entry``: the one it cited)."""

    question: str
    reply: str
    source: str
    entry: str | None = None


@dataclass(frozen=True)
class Taught:
    """What the adapter learns from people, and from where."""

    answers: tuple[TaughtAnswer, ...]
    used: dict[str, int]  # per source
    own_words: int  # answers in the person's wording
    dropped: int  # replies tied to no entry

    def detail(self) -> str:
        if not self.answers and not self.dropped:
            return "none yet (bot import, agent replies, thumbs-up)"
        sources = ", ".join(f"{self.used.get(s, 0)} {s}" for s in SOURCES)
        return (f"{len(self.answers)} questions ({sources}); {self.own_words} in the person's "
                f"words; {self.dropped} replies matched no FAQ entry")


async def _from_store(store: SessionStore) -> list[Said]:
    found: list[Said] = []
    async for event in store.iter_events():
        data = event["data"]
        if event["kind"] == AGENT_REPLY_EVENT and data.get("question") and data.get("text"):
            found.append(Said(str(data["question"]), str(data["text"]), "handoff"))
        elif event["kind"] == FEEDBACK_EVENT and data.get("rating") == "up":
            messages = data.get("messages") or []
            asked = [m["content"] for m in messages if m.get("role") == "user"]
            cited = [c.get("passage_id") for c in data.get("citations") or []]
            if asked and messages[-1].get("role") == "assistant" and cited:
                found.append(Said(str(asked[-1]), str(messages[-1]["content"]), "feedback",
                                  str(cited[0])))
    return found


def live_answers(bot: BotDefinition) -> list[Said]:
    """Handoff answers and thumbs-up replies in the bot's session store (none when the store
    cannot be read: training goes on without them)."""
    try:
        store = open_session_store(bot)
    except BotError as exc:
        log.warning("not learning from the session store: %s", exc)
        return []

    async def read() -> list[Said]:
        try:
            return await _from_store(store)
        finally:
            await store.close()

    return asyncio.run(read())


def imported_answers(bot: BotDefinition) -> list[Said]:
    """The question and agent reply of each imported conversation an agent answered."""
    return [Said(e.question, e.reply, "imported")
            for e in exchanges(load_conversations(bot.root)) if e.reply]


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip(" ?!.")


def tie(said: Sequence[Said], index: FaqIndex, embedder: Embedder,
        settings: MiningSettings | None = None) -> list[tuple[Said, str | None]]:
    """Each reply with the entry it states (its cited one, or the one whose answer it is
    clearly closer to than to any other, as the miner decides it), or None."""
    settings = settings or MiningSettings()
    loose = [s for s in said if s.entry is None]
    entries: dict[int, str | None] = {}
    if loose and index.passages:
        answers = embedder.embed([p.text for p in index.passages])
        scores = embedder.embed([s.reply for s in loose]) @ answers.T
        for s, row in zip(loose, scores, strict=True):
            order = np.argsort(-row)
            lead = row[order[0]] - (row[order[1]] if len(order) > 1 else 0.0)
            clear = row[order[0]] >= settings.reply_match and lead >= settings.reply_margin
            entries[id(s)] = index.passages[order[0]].id if clear else None
    known = {p.id for p in index.passages}
    return [(s, entries.get(id(s)) if s.entry is None else
             (s.entry if s.entry in known else None)) for s in said]


def taught_answers(bot: BotDefinition, index: FaqIndex, embedder: Embedder) -> Taught:
    """Everything the adapter learns from people at this training."""
    said = live_answers(bot) + imported_answers(bot)
    order = {source: n for n, source in enumerate(("handoff", "feedback", "imported"))}
    said.sort(key=lambda s: order[s.source])
    faq_questions = {_key(q) for p in index.passages
                     for q in (p.question or "", *p.alternatives)}
    seen: set[str] = set()
    answers: list[TaughtAnswer] = []
    used: Counter[str] = Counter()
    dropped = own = 0
    for s, entry in tie(said, index, embedder):
        key = _key(s.question)
        if entry is None:
            dropped += 1
            continue
        if key in seen or key in faq_questions:
            continue
        seen.add(key)
        passage = index.get(entry)
        assert passage is not None
        words = content_words(s.reply)
        grounded = bool(words) and len(words & content_words(passage.text)) \
            >= GROUNDED * len(words)
        own += grounded
        answers.append(TaughtAnswer(s.question, entry, s.reply if grounded else None,
                                    1 if s.source == "imported" else LIVE_WEIGHT))
        used[s.source] += 1
    return Taught(tuple(answers), dict(used), own, dropped)

