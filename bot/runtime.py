"""Everything a running bot needs, loaded once: models, index, session store, dialogue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.answering import FaqAnswerer, Generator
from bot.config import BotDefinition
from bot.dialogue import DialogueManager
from bot.routing import Router, load_analyzer
from bot.sessions import SessionStore
from bot.stores import open_session_store
from retrieval.embedder import SentenceEmbedder
from retrieval.knowledge import KnowledgeBase


def load_generator(bot: BotDefinition) -> Generator | None:
    """The dialogue model with the bot's trained adapter, when ``model.generation`` is on:
    loaded here, or (``model.server``) a client of the model server that serves it."""
    settings = bot.config.model
    if not settings.generation:
        return None
    if settings.server is not None:  # no local weights: the server has model and adapter
        from adapters.remote_model import RemoteDialogueModel

        return Generator(RemoteDialogueModel(settings), settings.server.adapter)
    from adapters.generation import DialogueModel

    model = DialogueModel(settings).load()
    return Generator(model, model.add_bot_adapter(bot))


@dataclass
class BotRuntime:
    """A loaded bot. Build with :meth:`load` (blocking: models and index)."""

    bot: BotDefinition
    dialogue: DialogueManager
    store: SessionStore
    knowledge: KnowledgeBase | None

    @classmethod
    def load(cls, bot: BotDefinition) -> BotRuntime:
        config = bot.config
        knowledge, embedder = None, None
        if config.faq is not None or config.intents:
            embedder = SentenceEmbedder(config.embedder.model, device=config.embedder.device,
                                        batch_size=config.embedder.batch_size)
            embedder.load()  # first, so a bad model path is named rather than a stale index
        if config.faq is not None and embedder is not None:
            knowledge = KnowledgeBase.load(bot, embedder)
        analyzer = load_analyzer(bot, embedder)  # intent + sentiment (None without intents)
        store = open_session_store(bot)
        answerer = FaqAnswerer(config, knowledge, load_generator(bot))
        router = Router(config, answerer, analyzer=analyzer)
        return cls(bot, DialogueManager(config, router=router, store=store), store, knowledge)

    @classmethod
    async def aload(cls, bot: BotDefinition) -> BotRuntime:
        return await asyncio.to_thread(cls.load, bot)

    async def close(self) -> None:
        await self.store.close()
