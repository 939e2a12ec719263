"""Shared fixtures: the real packaged embedder and small bot folders written per test."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bot/cli.py: before torch loads

from retrieval.embedder import SentenceEmbedder

REPO = Path(__file__).resolve().parent.parent

FAQ_YAML = """
- id: card-not-arrived
  question: My card has not arrived yet
  answer: >-
    Cards arrive within 5-7 working days.
    If yours has not come after 10 days, we send a new one.
  alternatives: ["where is my card", "card still not delivered"]
  category: cards
- id: reset-pin
  question: How do I reset my PIN?
  answer: Open the app, go to Card settings and choose Reset PIN.
  category: cards
- id: transfer-time
  question: How long does a bank transfer take?
  answer: Domestic transfers arrive the same day; international ones take 1-3 working days.
  category: transfers
"""

BOT_YAML = """
name: test_bot
persona:
  name: Ava
  greeting: Hello from Ava
faq:
  sources: [faq/main.yaml]
  top_k: 2
  answer_threshold: 0.5
fallback:
  message: Sorry, I do not know.
channels:
  rest:
    auth: none  # the tests call REST as local development does
"""


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder("all-MiniLM-L6-v2").load()


MakeBot = Callable[..., Path]


@pytest.fixture
def make_bot(tmp_path: Path) -> MakeBot:
    """Write a bot folder: ``make_bot(bot_yaml=..., files={"faq/main.yaml": ...})``."""

    def make(bot_yaml: str = BOT_YAML, files: dict[str, str] | None = None,
             name: str = "test_bot") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        (root / "bot.yaml").write_text(textwrap.dedent(bot_yaml))
        for relative, content in ({"faq/main.yaml": FAQ_YAML} if files is None else files).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content))
        return root

    return make
