from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from bot.build import train
from bot.definition.loader import load_bot
from bot.dialogue.follow_up import contextual_query, is_follow_up, is_question
from bot.runtime import BotRuntime
from bot.sessions.store import Session
from foundation.messages import UserMessage
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .dialogue_support import (
    DIALOGUE_BOT,
    RULES,
    FakeAnalyzer,
    dialogue_files,
    make_dialogue_bot,
    runtime_for,
)

UNUSED_BACKEND = "http://127.0.0.1:9"  # these tests never complete the form


@pytest.fixture
def runtime(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
            embedder: SentenceEmbedder) -> BotRuntime:
    return runtime_for(make_dialogue_bot(make_bot, monkeypatch, UNUSED_BACKEND), embedder,
                       FakeAnalyzer())


async def talk(runtime: BotRuntime, sender: str, *texts: str) -> list[dict[str, object]]:
    replies = [await runtime.dialogue.handle(UserMessage(sender, text)) for text in texts]
    return [r.to_dict() for r in replies]


async def test_ambiguous_intents_ask_which_one_and_payloads_pick_it(runtime: BotRuntime) -> None:
    clarify, picked = await talk(runtime, "u1", "is it about my pin or card?", "check_card")
    assert clarify["kind"] == "clarify" and clarify["intent"] is None
    assert clarify["text"] == "Did you mean pin help or check card?"
    assert clarify["buttons"] == [{"title": "pin help", "payload": "pin_help"},
                                  {"title": "check card", "payload": "check_card"}]
    assert picked["kind"] == "form" and picked["intent"] == "check_card"
    assert picked["confidence"] == 1.0


async def test_replies_carry_intent_confidence_and_sentiment(runtime: BotRuntime) -> None:
    greeting, faq, fallback = await talk(runtime, "u2", "hello!", "how do I reset my PIN?",
                                         "awful weather on mars today")
    assert (greeting["intent"], greeting["confidence"], greeting["sentiment"]) == \
        ("greeting", 0.96, "neutral")
    assert greeting["text"] == "Hello u2!"
    # the FAQ match is stronger; the intent did not decide the reply, so it is not named
    assert faq["kind"] == "faq" and faq["intent"] is None
    assert faq["confidence"] == pytest.approx(faq["citations"][0]["score"])  # type: ignore[index]
    assert fallback["kind"] == "fallback" and fallback["sentiment"] == "negative"
    assert fallback["confidence"] is None  # a fallback is no answer: nothing to be sure of


async def test_a_frustrated_customer_is_offered_a_person_at_the_first_miss(
        runtime: BotRuntime) -> None:
    calm, = await talk(runtime, "u8", "what's the weather on mars today")
    (cross,) = await talk(runtime, "u9", "ugh this is useless, where is my refund from the shop")
    offer = runtime.bot.config.handoff.offer  # type: ignore[union-attr]
    assert calm["kind"] == "fallback" and offer not in calm["text"]  # offered after 2 misses
    assert cross["kind"] == "fallback" and cross["sentiment"] == "negative"
    assert cross["text"].endswith(offer)  # type: ignore[union-attr]
    assert {"title": "Talk to a person", "payload": "human_agent"} in cross["buttons"]


async def test_a_near_certain_intent_keeps_its_canned_response(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> None:
    rules = [("pin", "pin_help", 0.99), *RULES]
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, UNUSED_BACKEND), embedder,
                          FakeAnalyzer(rules))
    (reply,) = await talk(runtime, "u3", "how do I reset my PIN?")
    assert reply["kind"] == "intent" and reply["text"] == "Open Card settings to manage your PIN."


async def test_negative_streak_hands_off(runtime: BotRuntime) -> None:
    first, second = await talk(runtime, "u4", "this is useless", "awful, I'm angry now")
    assert first["handoff"] is False and first["sentiment"] == "negative"
    assert second["kind"] == "handoff" and second["handoff"] is True
    assert "frustrating" in str(second["text"])


async def test_fallback_clarifies_then_offers_a_person_then_hands_off(
        runtime: BotRuntime) -> None:
    first, second, third = await talk(runtime, "u5", "blorp", "zzz qqq", "fnord")
    assert first["kind"] == "fallback" and first["text"] == "Sorry, I do not know."
    assert second["text"] == "Sorry, I do not know.\n\nWould you like to talk to a person?"
    assert second["buttons"] == [{"title": "Talk to a person", "payload": "human_agent"}]
    assert third["kind"] == "handoff" and third["handoff"] is True
    (offer_taken,) = await talk(runtime, "u6", "human_agent")  # the offer's payload
    assert offer_taken["kind"] == "handoff"


async def test_streamed_fallback_text_matches_the_final_reply(runtime: BotRuntime) -> None:
    await talk(runtime, "u7", "blorp")
    stream = runtime.dialogue.stream(UserMessage("u7", "zzz qqq"))
    deltas = [delta async for delta in stream]
    assert stream.reply is not None and "".join(deltas) == stream.reply.text
    assert stream.reply.text.endswith("talk to a person?")


async def test_without_a_handoff_section_the_bot_never_hands_off(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, embedder: SentenceEmbedder) -> None:
    bot_yaml = DIALOGUE_BOT.split("handoff:")[0]
    runtime = runtime_for(make_bot(bot_yaml, files=dialogue_files(UNUSED_BACKEND)), embedder,
                          FakeAnalyzer())
    replies = await talk(runtime, "u8", "blorp", "zzz", "fnord", "qux", "awful", "terrible",
                         "get me a human")
    assert [r["kind"] for r in replies] == ["fallback"] * 6 + ["intent"]
    assert not any(r["handoff"] for r in replies)


async def test_follow_up_questions_use_the_previous_question(runtime: BotRuntime) -> None:
    _, follow_up = await talk(runtime, "u9", "my card has not arrived",
                                  "and if it never comes?")
    assert follow_up["kind"] == "faq"
    assert follow_up["citations"][0]["passage_id"] == "card-not-arrived"  # type: ignore[index]
    (alone,) = await talk(runtime, "u10", "and if it never comes?")
    assert alone["kind"] == "fallback"


@dataclass
class _Hit:
    score: float


async def test_contextual_query_only_rewrites_weak_follow_ups() -> None:
    session = Session(key="k", channel="rest", sender="s", started_at=0, updated_at=0, history=[
        {"role": "user", "text": "how long does a transfer take?"},
        {"role": "bot", "text": "a day", "kind": "faq"},
        {"role": "user", "text": "4821"}, {"role": "bot", "text": "ok", "kind": "form"}])
    scores = {"and abroad?": 0.2, "how long does a transfer take? and abroad?": 0.9,
              "what about that one?": 0.7}

    async def retrieve(text: str) -> Sequence[_Hit]:
        return [_Hit(scores.get(text, 0.1))]

    async def rewrite(text: str) -> str:
        return await contextual_query(session, text, retrieve=retrieve, threshold=0.5)

    assert await rewrite("and abroad?") == "how long does a transfer take? and abroad?"
    assert await rewrite("what about that one?") == "what about that one?"  # strong already
    assert await rewrite("tell me all your fees for business accounts please") == \
        "tell me all your fees for business accounts please"  # not a follow-up
    assert is_follow_up("and how long does that take?") and not is_follow_up("hello there")
    assert is_question("how do I do it") and is_question("ok?") and not is_question("4821")


@pytest.fixture(scope="module")
def trained_runtime(tmp_path_factory: pytest.TempPathFactory) -> BotRuntime:
    """The dialogue bot with its real intent classifier and sentiment model."""
    root = tmp_path_factory.mktemp("real") / "bot"
    root.mkdir()
    for relative, content in dialogue_files(UNUSED_BACKEND).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    (root / "bot.yaml").write_text(DIALOGUE_BOT.replace("${TEST_AGENT_TOKEN}", "t"))
    bot = load_bot(root)
    train(bot, progress=False)
    return BotRuntime.load(bot)


async def test_real_classifier_routes_intents_forms_and_handoff(
        trained_runtime: BotRuntime) -> None:
    greeting, form = await talk(trained_runtime, "r1", "hello there", "where is my card?")
    assert greeting["intent"] == "greeting" and greeting["kind"] == "intent"
    assert greeting["sentiment"] in ("neutral", "positive")
    assert form["intent"] == "check_card" and form["kind"] == "form"
    (handoff,) = await talk(trained_runtime, "r2", "I want to talk to a real person")
    assert handoff["intent"] == "human_agent" and handoff["kind"] == "handoff"
    (faq,) = await talk(trained_runtime, "r3", "how long does a bank transfer take?")
    assert faq["kind"] == "faq" and faq["intent"] is None


