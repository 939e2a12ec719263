from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from bot.definition.loader import load_bot
from bot.dialogue.actions import ActionRunner, dotted
from bot.dialogue.templates import Templates

from ..conftest import MakeBot
from .dialogue_support import backend

__all__ = ["backend"]

SECRET = "sk-live-0123456789abcdef"


def runner_for(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, actions: str) -> ActionRunner:
    monkeypatch.setenv("CARD_API_KEY", SECRET)
    bot = load_bot(make_bot("name: b\nactions: actions.yaml\n",
                            files={"actions.yaml": actions}))
    config = bot.config
    return ActionRunner(config.actions, Templates(config.responses, seed=1),
                        error_message=config.dialogue.action_error)


def lookup(url: str, *, timeout: float = 5.0, extra: str = "") -> str:
    return f"""
lookup:
  url: {url}
  headers: {{Authorization: "Bearer ${{CARD_API_KEY}}"}}
  body: {{last4: "{{{{ card_last4 }}}}", date_of_birth: "{{{{ dob }}}}", n: "{{{{ n }}}}"}}
  timeout_s: {timeout}
  slots: {{status: card.status, eta: card.expected_by, missing: card.nope.deeper}}
  response: {{text: "{{{{ card_last4 }}}} is {{{{ status }}}} by {{{{ result.card.method }}}}"}}
  on_status: {{"404": {{text: "No card ending {{{{ card_last4 }}}}."}}}}
{extra}"""


CARD = {"card_last4": "1357", "dob": "1985-11-30", "n": 3, "slots": {"card_last4": "1357"}}


async def test_success_maps_slots_and_renders_the_reply(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    runner = runner_for(make_bot, monkeypatch, lookup(f"{backend}/cards/status"))
    result = await runner.run("lookup", CARD)
    assert result.ok and result.status == 200 and result.error is None
    assert result.slots == {"status": "dispatched", "eta": "2024-05-22"}
    assert result.reply is not None and result.reply.text == "1357 is dispatched by express"


async def test_body_keeps_json_types_and_url_values_are_encoded(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    runner = runner_for(make_bot, monkeypatch,
                        lookup(f"{backend}/misc/echo/{{{{ card_last4 }}}}?q={{{{ dob }}}}"))
    context = {**CARD, "card_last4": "../../admin", "dob": "a&b=c d"}
    result = await runner.run("lookup", context)
    echoed: dict[str, Any] = result.data
    assert echoed["path"] == "/misc/echo/..%2F..%2Fadmin"
    assert echoed["query"] == "q=a%26b%3Dc%20d"
    assert json.loads(echoed["body"]) == {"last4": "../../admin", "date_of_birth": "a&b=c d",
                                          "n": 3}
    assert echoed["headers"]["Authorization"] == f"Bearer {SECRET}"


async def test_mapped_error_status_gets_its_response(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    runner = runner_for(make_bot, monkeypatch, lookup(f"{backend}/cards/status"))
    result = await runner.run("lookup", {**CARD, "card_last4": "9999"})
    assert not result.ok and result.status == 404
    assert result.reply is not None and result.reply.text == "No card ending 9999."


@pytest.mark.parametrize(("path", "card", "timeout", "problem"), [
    ("/cards/status", "0000", 5.0, "HTTP 503"),
    ("/cards/status", "7777", 0.3, "no reply within 0.3 s"),
    ("/misc/not-json", "1357", 5.0, "not JSON"),
    ("/cards/status", "1357", 5.0, "request failed"),  # nothing listens on the port
])
async def test_failures_reply_politely_and_log_without_secrets(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
        caplog: pytest.LogCaptureFixture, path: str, card: str, timeout: float,
        problem: str) -> None:
    base = backend if problem != "request failed" else "http://127.0.0.1:9"
    runner = runner_for(make_bot, monkeypatch, lookup(f"{base}{path}?key=${{CARD_API_KEY}}",
                                                      timeout=timeout))
    started = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="bot.dialogue.actions"):
        result = await runner.run("lookup", {**CARD, "card_last4": card})
    assert time.perf_counter() - started < 3.0
    assert not result.ok and problem in (result.error or "")
    assert result.reply is not None
    assert result.reply.text == "Sorry, I can't check that right now. Please try again in a " \
                                "few minutes."
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "action lookup failed" in logged and problem in logged
    assert SECRET not in logged and card not in logged and "cards/status" not in logged


async def test_error_response_written_in_place(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    extra = "  error_response: {text: 'Card service down, sorry {{ card_last4 }}.'}"
    runner = runner_for(make_bot, monkeypatch, lookup(f"{backend}/cards/status") + extra)
    result = await runner.run("lookup", {**CARD, "card_last4": "0000"})
    assert result.reply is not None and result.reply.text == "Card service down, sorry ."


async def test_validation_action_verdicts(
        make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    runner = runner_for(make_bot, monkeypatch, f"""
check:
  url: {backend}/misc/validate
  body: {{value: "{{{{ value }}}}"}}
down:
  url: http://127.0.0.1:9/x
""")
    assert await runner.validate("check", {"value": "4821"}) is None
    assert await runner.validate("check", {"value": "1111"}) == "That card was cancelled."
    assert "can't check that" in str(await runner.validate("down", {"value": "4821"}))


def test_dotted_paths() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert dotted(data, "a.b.1.c") == 2
    assert dotted(data, "a.b.-1.c") == 2
    assert dotted(data, "a.b.5.c", "none") == "none"
    assert dotted(data, "a.x") is None


@pytest.mark.parametrize(("actions", "message"), [
    ("a: {url: 'http://x/{{ y'}\n", "template syntax error"),
    ("a: {url: 'http://x', on_status: {'200': r}}\n", "not an HTTP error status"),
    ("a: {url: 'http://x', response: nope}\n", "unknown response 'nope'"),
    ("a: {url: 'http://x', method: FETCH}\n", "must be one of"),
    ("a: {url: 'http://x', headers: {K: '${NOT_SET_ANYWHERE_42}'}}\n", "NOT_SET_ANYWHERE_42"),
])
def test_action_definition_errors(make_bot: MakeBot, actions: str, message: str) -> None:
    from bot.errors import ConfigError

    root = make_bot("name: b\nactions: actions.yaml\n", files={"actions.yaml": actions})
    with pytest.raises(ConfigError, match=message) as caught:
        load_bot(root)
    assert caught.value.file.endswith("actions.yaml") and caught.value.path.startswith("actions.a")
