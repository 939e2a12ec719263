"""Fixtures of the bot tests: a served bot with every channel (for the fuzz tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.definition.loader import load_bot
from bot.server.app import create_app

from ..conftest import MakeBot
from .fuzz_support import NO_LIMITS
from .production_support import ALL_CHANNELS, LIGHT_CORE, ServerThread


@pytest.fixture
def every_channel(make_bot: MakeBot) -> Iterator[ServerThread]:
    root = make_bot(LIGHT_CORE + ALL_CHANNELS + NO_LIMITS.removeprefix("security:\n"),
                    files={})
    with ServerThread(create_app(load_bot(root))) as running:
        yield running
