"""Knowledge written for agents (``faq.agent_sources``) is never quoted to customers, and
`bot validate` points out customer passages that read like instructions to an agent."""

from __future__ import annotations

import pytest

from bot.build import train
from bot.cli import main
from bot.definition.loader import load_bot
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.knowledge import fingerprint, load_passages

from ..conftest import FAQ_YAML, MakeBot

BOT = """
name: agents_bot
faq:
  sources: [faq/main.yaml]
  agent_sources: [faq/guidelines.yaml]
  answer_threshold: 0.5
answers: {policy: threshold}
fallback:
  message: Sorry, I do not know.
"""
GUIDELINES = """
- id: promo-codes
  question: Can I get a discount code?
  answer: >-
    Generate the promo code in the admin panel and share that with them. Click on
    [Promo Code] and pick 10 %.
"""


@pytest.fixture
def bot_root(make_bot: MakeBot) -> object:
    return make_bot(BOT, files={"faq/main.yaml": FAQ_YAML, "faq/guidelines.yaml": GUIDELINES})


def test_agent_sources_mark_their_passages(bot_root: object) -> None:
    bot = load_bot(bot_root)  # type: ignore[arg-type]
    sources = bot.faq_sources()
    assert {s.shown.split("/")[-1]: s.audience for s in sources} == {
        "main.yaml": "customers", "guidelines.yaml": "agents"}
    passages = {p.id: p.audience for p in load_passages(sources, bot.config.faq)}  # type: ignore[arg-type]
    assert passages["promo-codes"] == "agents" and passages["reset-pin"] == "customers"
    assert fingerprint(sources, bot.config.faq, "m")["agent_sources"] == [  # type: ignore[arg-type]
        "faq/guidelines.yaml"]
    plain = [s for s in sources if s.audience == "customers"]
    assert "agent_sources" not in fingerprint(plain, bot.config.faq, "m")  # type: ignore[arg-type]


async def test_an_agents_passage_is_never_quoted_to_a_customer(bot_root: object) -> None:
    bot = load_bot(bot_root)  # type: ignore[arg-type]
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        asked = await runtime.dialogue.handle(UserMessage("u1", "Can I get a discount code?"))
        customers = await runtime.dialogue.handle(UserMessage("u2", "How do I reset my PIN?"))
    finally:
        await runtime.close()
    assert asked.kind == "fallback" and "promo" not in asked.text.lower()
    assert not asked.citations
    assert customers.kind == "faq" and "Reset PIN" in customers.text


def test_validate_warns_about_instructions_to_agents_in_customer_sources(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(BOT.replace("  agent_sources: [faq/guidelines.yaml]\n", "").replace(
        "sources: [faq/main.yaml]", "sources: [faq/main.yaml, faq/guidelines.yaml]"),
        files={"faq/main.yaml": FAQ_YAML, "faq/guidelines.yaml": GUIDELINES})
    assert main(["validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert "'promo-codes' reads like an instruction to an agent ('share that with them')" in out
    assert "faq.agent_sources" in out and out.count("warning:") == 1
