"""Fixtures for channel tests: one trained tiny bot, served per test on loopback."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.build import train
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.dialogue.answerer import FaqAnswerer
from bot.dialogue.manager import DialogueManager
from bot.dialogue.router import Router
from bot.runtime import BotRuntime, load_knowledge
from bot.server.app import create_app
from bot.sessions.factory import open_session_store
from retrieval.embedder import SentenceEmbedder
from retrieval.knowledge import KnowledgeBase

from ..conftest import BOT_YAML, FAQ_YAML
from .support import Serve


@pytest.fixture(scope="session")
def trained_bot(tmp_path_factory: pytest.TempPathFactory) -> BotDefinition:
    """The conftest bot, trained once for every channel test."""
    root: Path = tmp_path_factory.mktemp("channels") / "bot"
    (root / "faq").mkdir(parents=True)
    (root / "bot.yaml").write_text(textwrap.dedent(BOT_YAML))
    (root / "faq" / "main.yaml").write_text(textwrap.dedent(FAQ_YAML))
    bot = load_bot(root)
    train(bot, progress=False)
    return bot


@pytest.fixture(scope="session")
def knowledge(trained_bot: BotDefinition, embedder: SentenceEmbedder) -> KnowledgeBase:
    return load_knowledge(trained_bot, embedder)


@pytest.fixture
async def serve(trained_bot: BotDefinition, knowledge: KnowledgeBase,
                tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve({"webhook": {...}}, cors_origins=[...])``: a TestClient on 127.0.0.1.

    Each app gets its own session database; the FAQ index and embedder are shared.
    """
    clients: list[TestClient] = []

    async def make(channels: dict[str, Any], *, cors_origins: tuple[str, ...] = (),
                   **server: Any) -> TestClient:
        config = trained_bot.config
        config = dataclasses.replace(
            config, channels=channels,
            server=dataclasses.replace(config.server, cors_origins=tuple(cors_origins), **server),
            sessions=dataclasses.replace(
                config.sessions, path=str(tmp_path / f"sessions{len(clients)}.sqlite3")))
        bot = dataclasses.replace(trained_bot, config=config)
        store = open_session_store(bot)
        router = Router(config, FaqAnswerer(config, knowledge))
        runtime = BotRuntime(bot, DialogueManager(config, router=router, store=store), store,
                             knowledge)
        client = TestClient(TestServer(create_app(bot, runtime=runtime), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
