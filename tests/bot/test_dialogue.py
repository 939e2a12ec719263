from __future__ import annotations

import asyncio

import pytest

from bot.build import train
from bot.definition.loader import load_bot
from bot.errors import BadRequest, TurnTimeout
from bot.runtime import BotRuntime
from foundation.messages import BotReply, ReplyStream, UserMessage

from ..conftest import BOT_YAML, MakeBot


@pytest.fixture
def runtime(make_bot: MakeBot) -> BotRuntime:
    bot = load_bot(make_bot())
    train(bot, progress=False)
    return BotRuntime.load(bot)


async def test_faq_answer_with_citation_then_fallback(runtime: BotRuntime) -> None:
    reply = await runtime.dialogue.handle(UserMessage("u1", "my card still hasn't arrived"))
    assert reply.kind == "faq" and "5-7 working days" in reply.text
    assert reply.citations[0].passage_id == "card-not-arrived"
    reply = await runtime.dialogue.handle(UserMessage("u1", "what's the weather on mars"))
    assert reply.kind == "fallback" and reply.text == "Sorry, I do not know."
    assert reply.citations == ()
    session = await runtime.store.get("rest:u1", channel="rest", sender="u1")
    assert [t["role"] for t in session.history] == ["user", "bot", "user", "bot"]
    assert session.history[1]["citations"] == ["card-not-arrived"]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"), ("   ", "empty"), ("x" * 5000, "too long"), ("a\x00b", "binary"),
    (42, "must be a string"),
])
async def test_bad_messages_are_rejected_and_store_nothing(runtime: BotRuntime, text: object,
                                                           reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        await runtime.dialogue.handle(UserMessage("u2", text))  # type: ignore[arg-type]
    session = await runtime.store.get("rest:u2", channel="rest", sender="u2")
    assert session.history == []


async def test_concurrent_messages_of_one_user_are_kept_in_order(runtime: BotRuntime) -> None:
    texts = [f"question number {i} about my card" for i in range(6)]
    await asyncio.gather(*(runtime.dialogue.handle(UserMessage("u3", t)) for t in texts))
    session = await runtime.store.get("rest:u3", channel="rest", sender="u3")
    users = [t["text"] for t in session.history if t["role"] == "user"]
    assert users == texts
    assert len(session.history) == 12


async def test_slow_turn_times_out_clearly(make_bot: MakeBot,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bot = load_bot(make_bot(BOT_YAML + "server:\n  turn_timeout_s: 0.05\n"))
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)

    async def slow(*_: object) -> ReplyStream:
        await asyncio.sleep(1)
        return ReplyStream.of(BotReply(text="too late"))

    monkeypatch.setattr(runtime.dialogue.router, "route", slow)
    with pytest.raises(TurnTimeout, match="no reply within"):
        await runtime.dialogue.handle(UserMessage("u4", "hello"))


async def test_stream_yields_text_then_the_reply_and_saves_once(runtime: BotRuntime) -> None:
    stream = runtime.dialogue.stream(UserMessage("u5", "reset pin"))
    deltas = [delta async for delta in stream]
    assert stream.reply is not None and "".join(deltas) == stream.reply.text
    session = await runtime.store.get("rest:u5", channel="rest", sender="u5")
    assert len(session.history) == 2


@pytest.mark.parametrize(("question", "topic"), [
    ("How long does an international transfer take?", "international transfer"),
    ("What exchange rate do you use when I spend in dollars?", "exchange rate use spend dollars"),
    ("How do I order a new debit card?", "order new debit card"),
])
def test_a_questions_topic_is_its_words_that_do_not_ask(question: str, topic: str) -> None:
    from bot.dialogue.follow_up import topic_of

    assert topic_of(question) == topic
