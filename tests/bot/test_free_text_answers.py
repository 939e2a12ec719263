"""Free-text FAQ answers with generation off: whole sentences, never internal notes."""

from __future__ import annotations

import re

import pytest

from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.embedder import SentenceEmbedder

from ..conftest import BOT_YAML, MakeBot
from .dialogue_support import runtime_for

GUIDE_MD = """\
# Acme guide

## Your current account

Opening a current account takes about ten minutes in the Acme app. You need to be 18 or over
and live in the UK. We check your identity with a photo of your passport or driving licence
and a short selfie video. Most accounts are approved within a few minutes, but some checks can
take up to 2 working days.

<!-- Ops: the switching backlog is three weeks, code SWITCH-RED; do not tell customers. -->

Premium accounts cost £7.50 a month and include travel insurance and phone insurance. There
is no monthly fee for the standard account. Overdrafts are available up to £2,500, subject to
a credit check, at 29.9% EAR variable.

Internal note: team leads may waive the premium fee once per customer
with the code WAIVE-7.

## How do I close my account?

Tap Profile > Close account. We pay any remaining balance to an account in your name within
3 working days.
"""

HIDDEN = ("SWITCH-RED", "backlog", "WAIVE-7", "team leads", "Internal", "<!--")


@pytest.fixture
def runtime(make_bot: MakeBot, embedder: SentenceEmbedder) -> BotRuntime:
    yaml = BOT_YAML.replace("faq/main.yaml", "faq/guide.md")
    return runtime_for(make_bot(yaml, files={"faq/guide.md": GUIDE_MD}), embedder, None)


def test_no_passage_holds_an_internal_note(runtime: BotRuntime) -> None:
    assert runtime.knowledge is not None
    texts = [p.text for p in runtime.knowledge.index.passages]
    assert any("£7.50" in t for t in texts)
    assert [t for t in texts if any(h in t for h in HIDDEN)] == []


async def test_a_free_text_answer_is_the_sentences_that_answer_the_question(
        runtime: BotRuntime) -> None:
    assert runtime.knowledge is not None
    reply = await runtime.dialogue.handle(UserMessage("u1", "how much does a premium account "
                                                            "cost per month?"))
    assert reply.kind == "faq" and "Premium accounts cost £7.50 a month" in reply.text
    assert re.search(r"[.!?]$", reply.text)
    passage = runtime.knowledge.index.get(reply.citations[0].passage_id)
    assert passage is not None and passage.question is None
    assert len(reply.text) < len(passage.text) and "selfie" not in reply.text
    for question in ("can you waive the premium fee?", "how long does switching take?",
                     "what is the overdraft limit?"):
        reply = await runtime.dialogue.handle(UserMessage("u2", question))
        assert reply.text and not any(h in reply.text for h in HIDDEN)


async def test_a_question_and_answer_entry_is_answered_as_written(runtime: BotRuntime) -> None:
    reply = await runtime.dialogue.handle(UserMessage("u3", "how do I close my account?"))
    assert reply.text == ("Tap Profile > Close account. We pay any remaining balance to an "
                          "account in your name within\n3 working days.")
