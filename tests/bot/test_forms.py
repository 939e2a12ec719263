from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from adapters.classifiers.entities import EntityExtractor
from bot.definition.dialogue import SlotDefinition
from bot.definition.loader import load_bot
from bot.dialogue.forms import parse_slot
from bot.errors import ConfigError
from bot.runtime import BotRuntime
from bot.server.app import RUNTIME
from retrieval.embedder import SentenceEmbedder

from ..conftest import MakeBot
from .dialogue_support import (
    FORMS_YAML,
    FakeAnalyzer,
    backend,
    client_for,
    dialogue_client,
    dialogue_files,
    make_dialogue_bot,
    runtime_for,
    sayer,
)

__all__ = ["backend", "dialogue_client"]


def slot(**fields: object) -> SlotDefinition:
    return SlotDefinition(**{"name": "s", "prompt": "?", **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("definition", "text", "value", "reason"), [
    (slot(type="number", min=1, max=100), "about 12.5 please", 12.5, None),
    (slot(type="number", min=1, max=100), "1,500", None, "at most 100"),
    (slot(type="number"), "lots", None, "doesn't look like a number"),
    (slot(type="integer"), "3 people", 3, None),
    (slot(type="integer"), "2.5", None, "whole number"),
    (slot(type="date"), "born on 14 March 1990", "1990-03-14", None),
    (slot(type="date"), "14 March", None, "include the year"),
    (slot(type="date"), "03/04/1990", None, "day from the month"),
    (slot(type="email"), "it's Ann@Example.com thanks", "ann@example.com", None),
    (slot(type="email"), "ann at example", None, "email address"),
    (slot(type="choice", choices=("debit", "credit")), "the Credit one", "credit", None),
    (slot(type="choice", choices=("debit", "credit")), "2", "credit", None),
    (slot(type="choice", choices=("debit", "credit")), "gold", None, "debit, credit"),
    (slot(type="regex", pattern=r"^\D*(\d{4})\D*$"), "it ends 4821", "4821", None),
    (slot(type="regex", pattern=r"^\D*(\d{4})\D*$"), "4111 1111 1111 1111", None, "right"),
    (slot(type="text"), "  Ann Smith ", "Ann Smith", None),
])
def test_slot_values_are_parsed_and_validated(definition: SlotDefinition, text: str,
                                              value: object, reason: str | None) -> None:
    parsed = parse_slot(definition, text, EntityExtractor().extract(text))
    assert parsed.value == value
    assert (parsed.reason is None) if reason is None else reason in (parsed.reason or "")


async def test_form_completes_over_http_with_reask_and_backend_action(
        dialogue_client: tuple[BotRuntime, TestClient]) -> None:  # type: ignore[type-arg]
    _, client = dialogue_client
    say = sayer(client, "ann")
    reply = await say("where is my card?")
    assert reply["kind"] == "form" and reply["intent"] == "check_card"
    assert reply["text"] == "What are the last 4 digits of the card?"
    reply = await say("my card is 4111 1111 1111 1111")  # invalid: re-asked with the reason
    assert reply["kind"] == "form"
    assert reply["text"] == "That doesn't look right. Please send only the last 4 digits."
    assert (await say("4821"))["text"] == "And your date of birth?"
    reply = await say("12 April 1990")
    assert reply["kind"] == "form_done" and reply["text"] == "Card 4821: delivered."
    session = await client.app[RUNTIME].store.get(  # type: ignore[index]
        "rest:ann", channel="rest", sender="ann")
    assert session.slots == {"card_last4": "4821", "date_of_birth": "1990-04-12",
                             "card_status": "delivered"}
    assert "form" not in session.state
    # carry-over: the slots are known, so asking again answers at once
    assert (await say("track my card again"))["text"] == "Card 4821: delivered."


async def test_interruption_is_answered_and_the_form_resumes(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, backend), embedder,
                          FakeAnalyzer())
    client = await client_for(runtime)
    try:
        say = sayer(client, "bo")
        await say("track my card")
        reply = await say("how long does a bank transfer take?")
        assert reply["kind"] == "faq"
        assert reply["citations"][0]["passage_id"] == "transfer-time"
        assert reply["text"].endswith("What are the last 4 digits of the card?")
        reply = await say("hello, are you still there?")  # an intent with a response
        assert reply["text"] == "Hello bo!\n\nWhat are the last 4 digits of the card?"
        assert (await say("ending 1357"))["text"] == "And your date of birth?"
        reply = await say("30 November 1985")
        assert reply == {**reply, "kind": "form_done", "text": "Card 1357: dispatched."}
    finally:
        await client.close()


async def test_cancel_stops_the_form_and_give_up_after_max_attempts(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, backend), embedder,
                          FakeAnalyzer())
    client = await client_for(runtime)
    try:
        say = sayer(client, "cy")
        await say("track my card")
        reply = await say("Stop!")
        assert reply["kind"] == "form_cancelled" and "stopped" in reply["text"]
        assert (await say("4821"))["kind"] == "fallback"  # no form any more
        await say("track my card")
        assert (await say("please cancel that"))["kind"] == "form_cancelled"  # cancel intent
        await say("track my card")
        assert (await say("no idea"))["kind"] == "form"
        assert (await say("not sure"))["kind"] == "form"
        reply = await say("dunno")  # third invalid answer: max_attempts
        assert reply["kind"] == "form_failed" and "couldn't get that" in reply["text"]
        session = await runtime.store.get("rest:cy", channel="rest", sender="cy")
        assert "form" not in session.state and session.slots == {}
    finally:
        await client.close()


async def test_custom_validation_action_and_unknown_card(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        embedder: SentenceEmbedder) -> None:
    files = dialogue_files(backend)
    files["forms.yaml"] = FORMS_YAML.replace(
        "      entity: card_last4\n", "      entity: card_last4\n      validate: check_last4\n")
    files["actions.yaml"] += f"""
check_last4:
  url: {backend}/misc/validate
  body: {{value: "{{{{ value }}}}"}}
"""
    monkeypatch.setenv("TEST_AGENT_TOKEN", "x")
    from .dialogue_support import DIALOGUE_BOT

    runtime = runtime_for(make_bot(DIALOGUE_BOT, files=files), embedder, FakeAnalyzer())
    client = await client_for(runtime)
    try:
        say = sayer(client, "di")
        await say("track my card")
        reply = await say("1111")
        assert reply["text"].startswith("That card was cancelled.")
        assert (await say("9999"))["text"] == "And your date of birth?"
        reply = await say("1 Jan 1990")
        assert reply["kind"] == "action_error" and reply["text"] == "No card ending 9999 matches."
        session = await runtime.store.get("rest:di", channel="rest", sender="di")
        assert "card_last4" not in session.slots  # wrong details are asked again next time
    finally:
        await client.close()


@pytest.mark.parametrize(("forms", "message"), [
    ("f:\n  slots:\n    - {name: a, prompt: x, type: regex}\n", "needs a 'pattern'"),
    ("f:\n  slots:\n    - {name: a, prompt: x}\n  action: nope\n", "unknown action 'nope'"),
    ("f:\n  slots:\n    - {name: a, prompt: '{{ x'}\n", "template syntax error"),
    ("f:\n  slots:\n    - {name: a, prompt: x, entity: shoe_size}\n", "unknown entity"),
    ("f:\n  slots:\n    - {name: a, prompt: x}\n    - {name: a, prompt: y}\n", "duplicate slot"),
])
def test_form_definition_errors_name_the_file_and_key(make_bot: MakeBot, forms: str,
                                                      message: str) -> None:
    root = make_bot("name: b\nforms: forms.yaml\n", files={"forms.yaml": forms})
    with pytest.raises(ConfigError, match=message) as caught:
        load_bot(root)
    assert caught.value.file.endswith("forms.yaml") and caught.value.path.startswith("forms.f")
