"""Everything a running bot needs, loaded once: models, index, session store, dialogue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from adapters.answering.answer_policy import AnswerPolicy
from adapters.answering.policy_data import policy_fingerprint
from adapters.classifiers.analysis import Analyzer
from adapters.classifiers.intents import IntentClassifier
from adapters.engines.choice import engine_for, local_model
from adapters.engines.remote_model import RemoteDialogueModel
from bot.build import bot_embedder, intent_uses
from bot.definition.config import BotDefinition
from bot.dialogue.answerer import FaqAnswerer, Generator
from bot.dialogue.manager import DialogueManager
from bot.dialogue.router import Router
from bot.errors import library_errors
from bot.sessions.factory import open_session_store
from bot.sessions.store import SessionStore
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase


def load_knowledge(bot: BotDefinition, embedder: Embedder) -> KnowledgeBase:
    """The bot's trained FAQ index; refuses one that is missing or stale."""
    with library_errors(file=bot.shown(bot.file)):
        faq = bot.config.faq
        sources = bot.faq_sources()
        assert faq is not None  # faq_sources() refuses a bot without one
        return KnowledgeBase.load(bot.index_dir, sources, faq, embedder)


def load_intents(bot: BotDefinition, embedder: Embedder) -> IntentClassifier:
    """The bot's trained intent classifier; refuses one trained on other examples."""
    with library_errors(file=bot.shown(bot.file)):
        return IntentClassifier.load(bot.classifier_dirs.intents, bot.config.intents,
                                     bot.config.classifier, embedder)


def load_analyzer(bot: BotDefinition, embedder: Embedder | None) -> Analyzer | None:
    """The bot's trained classifiers; None when it defines no intents."""
    if not bot.config.intents or embedder is None:
        return None
    config = bot.config
    with library_errors(file=bot.shown(bot.file)):
        return Analyzer.load(bot.classifier_dirs, config.intents, config.classifier,
                             config.entities, embedder)


def load_policy(bot: BotDefinition, knowledge: KnowledgeBase | None,
                analyzer: Analyzer | None) -> AnswerPolicy | None:
    """The bot's learned answer policy (None: ``answers.policy: threshold`` or no FAQ);
    refuses one learned from other FAQ, intents or settings."""
    config = bot.config
    if knowledge is None or config.answers.policy != "learned":
        return None
    classifier = analyzer.intents if analyzer is not None else None
    wanted = policy_fingerprint(knowledge.index, intent_uses(bot), classifier, config.answers,
                                config.faq.top_k if config.faq else 3)
    with library_errors(file=bot.shown(bot.file)):
        policy = AnswerPolicy.load(bot.policy_dir, wanted)
    return policy if policy.learned else None


def load_generator(bot: BotDefinition) -> Generator | None:
    """The dialogue model with the bot's trained adapter, when ``model.generation`` is on:
    loaded here, or (``model.server``) a client of the model server that serves it."""
    settings = bot.config.model
    if not settings.generation:
        return None
    if not engine_for(settings).local:  # a model server: it has the model and adapter
        return Generator(RemoteDialogueModel(settings), settings.server.adapter
                         if settings.server else None)
    with library_errors(file=bot.shown(bot.file)):
        model = local_model(settings)
        model.add_adapter(bot.config.name, bot.adapter_dir)
        model.load()
    return Generator(model, bot.config.name)


@dataclass
class BotRuntime:
    """A loaded bot. Build with :meth:`load` (blocking: models and index)."""

    bot: BotDefinition
    dialogue: DialogueManager
    store: SessionStore
    knowledge: KnowledgeBase | None
    generator: Generator | None = None

    @classmethod
    def load(cls, bot: BotDefinition, *, store: SessionStore | None = None) -> BotRuntime:
        """Load ``bot``; with ``store``, share that session store (a reload of the models)."""
        with library_errors(file=bot.shown(bot.file)):
            return cls._load(bot, store)

    @classmethod
    def _load(cls, bot: BotDefinition, shared: SessionStore | None = None) -> BotRuntime:
        config = bot.config
        knowledge, embedder = None, None
        if config.faq is not None or config.intents:
            embedder = bot_embedder(bot)
            embedder.load()  # first, so a bad model path is named rather than a stale index
        if config.faq is not None and embedder is not None:
            knowledge = load_knowledge(bot, embedder)
        analyzer = load_analyzer(bot, embedder)  # intent + sentiment (None without intents)
        store = shared or open_session_store(bot)
        generator = load_generator(bot)
        policy = load_policy(bot, knowledge, analyzer)
        answerer = FaqAnswerer(config, knowledge, generator, policy)
        router = Router(config, answerer, analyzer=analyzer)
        return cls(bot, DialogueManager(config, router=router, store=store), store, knowledge,
                   generator)

    @classmethod
    async def aload(cls, bot: BotDefinition) -> BotRuntime:
        return await asyncio.to_thread(cls.load, bot)

    async def close(self) -> None:
        await self.store.close()
        await self.close_models()

    async def close_models(self) -> None:
        """Stop the dialogue model (e.g. its llama.cpp server); the store stays open."""
        if self.generator is not None:
            await asyncio.to_thread(self.generator.model.close)
