"""Everything a running bot needs, loaded once: models, index, session store, dialogue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.answering import FaqAnswerer
from bot.config import BotDefinition
from bot.dialogue import DialogueManager
from bot.routing import Router
from bot.sessions import SQLiteSessionStore
from retrieval.embedder import SentenceEmbedder
from retrieval.knowledge import KnowledgeBase


@dataclass
class BotRuntime:
    """A loaded bot. Build with :meth:`load` (blocking: models and index)."""

    bot: BotDefinition
    dialogue: DialogueManager
    store: SQLiteSessionStore
    knowledge: KnowledgeBase | None

    @classmethod
    def load(cls, bot: BotDefinition) -> BotRuntime:
        config = bot.config
        knowledge = None
        if config.faq is not None:
            embedder = SentenceEmbedder(config.embedder.model, device=config.embedder.device,
                                        batch_size=config.embedder.batch_size)
            knowledge = KnowledgeBase.load(bot, embedder)
            embedder.load()
        store = SQLiteSessionStore(bot.path(config.sessions.path),
                                   ttl_seconds=config.sessions.ttl_minutes * 60).open()
        router = Router(config, FaqAnswerer(config, knowledge))
        return cls(bot, DialogueManager(config, router=router, store=store), store, knowledge)

    @classmethod
    async def aload(cls, bot: BotDefinition) -> BotRuntime:
        return await asyncio.to_thread(cls.load, bot)

    async def close(self) -> None:
        await self.store.close()
