"""Asking for a person works in every bot that has a handoff section, without an intent for
it; a frustrated customer the bot cannot help is offered a person at once."""

from __future__ import annotations

import pytest

from bot.build import train
from bot.definition.loader import load_bot
from bot.dialogue.person_request import asks_for_person
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.embedder import SentenceEmbedder

from ..conftest import BOT_YAML, MakeBot
from .dialogue_support import FakeAnalyzer, backend, make_dialogue_bot, runtime_for

__all__ = ["backend"]  # the fixture

HANDOFF = "handoff:\n  agent_token: agent-token-0123456789\n"


@pytest.mark.parametrize(("text", "asks"), [
    ("can I talk to a human please", True), ("agent please", True), ("Representative!", True),
    ("I want to speak to a real person", True), ("hablar con una persona", True),
    ("转人工", True), ("how do I add a person to my account", False),
    ("I sent money to someone by mistake", False), ("can someone else use my card", False),
    ("transfer money to another person", False),
])
def test_requests_for_a_person_are_heard(text: str, asks: bool) -> None:
    assert asks_for_person(text) is asks


async def test_a_plain_faq_bot_with_handoff_hands_over_when_asked(make_bot: MakeBot) -> None:
    bot = load_bot(make_bot(BOT_YAML + HANDOFF))
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        answer = await runtime.dialogue.handle(UserMessage("u1", "how do I reset my PIN?"))
        asked = await runtime.dialogue.handle(UserMessage("u1", "can I talk to a human please"))
        unmoved = await runtime.dialogue.handle(UserMessage("u2", "can I speak to a human"))
    finally:
        await runtime.close()
    assert answer.kind == "faq" and not answer.handoff
    assert asked.kind == "handoff" and asked.handoff
    assert asked.text == bot.config.handoff.message  # type: ignore[union-attr]
    assert unmoved.handoff  # a new conversation: the first message may ask at once


async def test_without_a_handoff_section_asking_gets_the_fallback(make_bot: MakeBot) -> None:
    bot = load_bot(make_bot(BOT_YAML))
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        reply = await runtime.dialogue.handle(UserMessage("u1", "can I talk to a human please"))
    finally:
        await runtime.close()
    assert reply.kind == "fallback" and not reply.handoff and reply.confidence is None


async def test_a_guessed_request_for_a_person_yields_to_a_strong_faq_match(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    """The classifier guesses human_agent for anything with "someone"; only a message that
    the FAQ answers well keeps the FAQ's answer, and one in so many words always hands off."""
    root = make_dialogue_bot(make_bot, monkeypatch, backend)
    analyzer = FakeAnalyzer([("someone", "human_agent", 0.8), ("staff", "human_agent", 0.8),
                             ("sure", "human_agent", 0.995)])
    runtime = runtime_for(root, embedder, analyzer)
    try:
        answered = await runtime.dialogue.handle(
            UserMessage("a", "can someone tell me how long does a bank transfer take?"))
        guessed = await runtime.dialogue.handle(UserMessage("b", "can a member of staff ring"))
        certain = await runtime.dialogue.handle(
            UserMessage("c", "sure, how long does a bank transfer take?"))
        in_words = await runtime.dialogue.handle(
            UserMessage("d", "how long does a bank transfer take? let me talk to someone"))
    finally:
        await runtime.close()
    assert answered.kind == "faq" and not answered.handoff
    assert answered.citations[0].passage_id == "transfer-time"
    assert guessed.handoff and certain.handoff and in_words.handoff
