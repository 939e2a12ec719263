"""Decide what the bot answers for one message, given the session so far."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.config import BotConfig
from bot.messages import BotReply, Citation, UserMessage
from bot.sessions import Session
from retrieval.index import Hit
from retrieval.knowledge import KnowledgeBase


@dataclass
class Router:
    """Answers from the best FAQ match above the threshold, else the fallback."""

    config: BotConfig
    knowledge: KnowledgeBase | None = None

    async def route(self, session: Session, message: UserMessage) -> BotReply:
        hits = await self.retrieve(message.text)
        return self.answer_from_faq(hits) or self.fallback()

    async def retrieve(self, text: str) -> list[Hit]:
        """Top-k FAQ passages for ``text`` (the embedding runs off the event loop)."""
        if self.knowledge is None or self.config.faq is None:
            return []
        return await asyncio.to_thread(self.knowledge.search, text, self.config.faq.top_k)

    def answer_from_faq(self, hits: list[Hit]) -> BotReply | None:
        """The best passage's answer with its citation, if it clears the threshold."""
        faq = self.config.faq
        if not hits or faq is None or hits[0].score < faq.answer_threshold:
            return None
        best = hits[0]
        return BotReply(text=best.passage.text, citations=(citation(best),), kind="faq",
                        confidence=round(best.score, 4))

    def fallback(self) -> BotReply:
        return BotReply(text=self.config.fallback.message, kind="fallback")


def citation(hit: Hit) -> Citation:
    passage = hit.passage
    return Citation(passage_id=passage.id, source=passage.source,
                    title=passage.title or passage.question or "", score=round(hit.score, 4))
