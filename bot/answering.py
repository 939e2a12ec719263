"""Answer a question from the FAQ: the exact FAQ answer when retrieval is confident.

This is the FAQ/unknown stage of routing; grounded generation plugs in here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bot.config import BotConfig
from bot.messages import BotReply, Citation
from bot.sessions import Session
from retrieval.index import Hit
from retrieval.knowledge import KnowledgeBase


def citation(hit: Hit) -> Citation:
    passage = hit.passage
    return Citation(passage_id=passage.id, source=passage.source,
                    title=passage.title or passage.question or "", score=round(hit.score, 4))


@dataclass
class FaqAnswerer:
    """Retrieves passages and answers from the best one, or falls back."""

    config: BotConfig
    knowledge: KnowledgeBase | None = None

    async def retrieve(self, text: str) -> list[Hit]:
        """Top-k FAQ passages for ``text`` (the embedding runs off the event loop)."""
        if self.knowledge is None or self.config.faq is None:
            return []
        return await asyncio.to_thread(self.knowledge.search, text, self.config.faq.top_k)

    def exact_answer(self, hits: list[Hit]) -> BotReply | None:
        """The best passage's answer with its citation, if it clears the threshold."""
        faq = self.config.faq
        if not hits or faq is None or hits[0].score < faq.answer_threshold:
            return None
        best = hits[0]
        return BotReply(text=best.passage.text, citations=(citation(best),), kind="faq",
                        confidence=round(best.score, 4))

    def fallback(self) -> BotReply:
        return BotReply(text=self.config.fallback.message, kind="fallback")

    async def stream(self, session: Session, text: str) -> AsyncIterator[str | BotReply]:
        """Text deltas then the final reply for an FAQ or unknown question."""
        reply = self.exact_answer(await self.retrieve(text)) or self.fallback()
        yield reply.text
        yield reply
