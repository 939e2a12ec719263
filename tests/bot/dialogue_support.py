"""Helpers for the dialogue tests: the example card backend, a test bot, a fake analyzer."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.classifiers.analysis import Analysis
from adapters.classifiers.entities import EntityExtractor
from adapters.classifiers.intents import IntentPrediction
from adapters.classifiers.sentiment import Frustration, SentimentPrediction
from bot.build import build_index
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.dialogue.answerer import FaqAnswerer
from bot.dialogue.manager import DialogueManager
from bot.dialogue.router import Router
from bot.dialogue.turn import MessageAnalyzer
from bot.runtime import BotRuntime, load_knowledge
from bot.server.app import create_app
from bot.sessions.factory import open_session_store
from retrieval.embedder import SentenceEmbedder

from ..conftest import FAQ_YAML, REPO, MakeBot

AGENT_TOKEN = "agent-secret-token-123"
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"  # handoff.agents' defaults


def backend_module() -> ModuleType:
    """``example_bots/acme_bank/backend.py`` (not a package: loaded from its path)."""
    path = REPO / "example_bots" / "acme_bank" / "backend.py"
    spec = importlib.util.spec_from_file_location("acme_backend", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _misc(request: web.Request) -> web.StreamResponse:
    """Odd replies for action tests: not JSON, an echo of the path, a validation verdict."""
    kind = request.match_info["kind"]
    if kind == "not-json":
        return web.Response(text="<html>oops</html>", content_type="text/html")
    if kind == "validate":
        value = (await request.json()).get("value")
        if value == "1111":
            return web.json_response({"valid": False, "reason": "That card was cancelled."})
        return web.json_response({"valid": True})
    url = request.rel_url
    return web.json_response({"path": url.raw_path, "query": url.raw_query_string,
                              "headers": dict(request.headers),
                              "body": await request.text()})


@pytest.fixture
async def backend() -> AsyncIterator[str]:
    """The example card backend plus a few odd routes on a loopback port; yields its URL."""
    app = backend_module().create_app()
    app.router.add_route("*", "/misc/{kind}{tail:.*}", _misc)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


INTENTS_YAML = """
- name: greeting
  response: greet
  examples: [hello, hi there, good morning]
- name: human_agent
  response: human
  examples: [I want to talk to a person, get me a human, speak to an agent]
- name: check_card
  form: card_status
  examples: [where is my card, track my card, card delivery status]
- name: pin_help
  response: pin
  examples: [I forgot my pin, reset my pin code, change my PIN]
- name: thanks
  response: thanks
  examples: [thanks, thank you, cheers]
"""

RESPONSES_YAML = """
greet:
  text: Hello {{ sender }}!
human:
  text: Passing you to a colleague now.
pin:
  text: Open Card settings to manage your PIN.
thanks:
  text: You're welcome.
  variations: [Happy to help., Any time.]
"""

FORMS_YAML = """
card_status:
  slots:
    - name: card_last4
      type: regex
      pattern: '^\\D*(\\d{4})\\D*$'
      entity: card_last4
      prompt: What are the last 4 digits of the card?
      invalid: "{{ reason }} Please send only the last 4 digits."
    - name: date_of_birth
      type: date
      prompt: And your date of birth?
  action: card_lookup
  max_attempts: 3
"""

ACTIONS_YAML = """
card_lookup:
  url: "{url}/cards/status"
  body: {{last4: "{{{{ card_last4 }}}}", date_of_birth: "{{{{ date_of_birth }}}}"}}
  timeout_s: {timeout}
  slots: {{card_status: card.status}}
  response:
    text: "Card {{{{ card_last4 }}}}: {{{{ result.card.status }}}}."
  on_status:
    "404": {{text: "No card ending {{{{ card_last4 }}}} matches."}}
"""

DIALOGUE_BOT = """
name: dialogue_bot
faq:
  sources: [faq/main.yaml]
  top_k: 2
  answer_threshold: 0.5
fallback:
  message: Sorry, I do not know.
intents: intents.yaml
responses: responses.yaml
forms: forms.yaml
actions: actions.yaml
dialogue:
  seed: 7
channels:
  rest: {auth: none}
handoff:
  agent_token: ${TEST_AGENT_TOKEN}
  agents:
    alice: ${TEST_ALICE_TOKEN:-alice-token-0123456789}
    bob: ${TEST_BOB_TOKEN:-bob-token-0123456789}
  negative_streak: 2
  offer_after: 2
  fallback_streak: 3
"""


def dialogue_files(url: str, *, timeout: float = 5.0) -> dict[str, str]:
    """The files of the dialogue test bot, its action calling ``url``."""
    return {"faq/main.yaml": FAQ_YAML, "intents.yaml": INTENTS_YAML,
            "responses.yaml": RESPONSES_YAML, "forms.yaml": FORMS_YAML,
            "actions.yaml": ACTIONS_YAML.format(url=url, timeout=timeout)}


def make_dialogue_bot(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, url: str, *,
                      bot_yaml: str = DIALOGUE_BOT, timeout: float = 5.0) -> Path:
    monkeypatch.setenv("TEST_AGENT_TOKEN", AGENT_TOKEN)
    return make_bot(bot_yaml, files=dialogue_files(url, timeout=timeout))


# Substring -> (intent, confidence); first match wins. "pin or card" is ambiguous.
RULES: list[tuple[str, str, float]] = [
    ("person", "human_agent", 0.97), ("human", "human_agent", 0.97),
    ("where is my card", "check_card", 0.95), ("track", "check_card", 0.93),
    ("hello", "greeting", 0.96), ("pin", "pin_help", 0.9), ("thank", "thanks", 0.98),
    ("cancel", "cancel", 0.9),
]
NEGATIVE_WORDS = ("useless", "angry", "terrible", "awful")


class FakeAnalyzer:
    """A deterministic :class:`MessageAnalyzer`: keyword rules, keyword sentiment, the real
    built-in entities."""

    def __init__(self, rules: list[tuple[str, str, float]] | None = None) -> None:
        self.rules = RULES if rules is None else rules
        self.seen: list[str] = []
        self.entities = EntityExtractor()

    def analyze(self, text: str, *, frustration: Any = None) -> Analysis:
        self.seen.append(text)
        lowered = text.lower()
        if "pin or card" in lowered:
            prediction = IntentPrediction("pin_help", 0.46, [("pin_help", 0.46),
                                                           ("check_card", 0.44)], False, True)
        else:
            hit = next(((i, c) for k, i, c in self.rules if k in lowered), None)
            prediction = (IntentPrediction(hit[0], hit[1], [(hit[0], hit[1])]) if hit else
                          IntentPrediction(None, 0.1, [("greeting", 0.1)], out_of_scope=True))
        negative = any(w in lowered for w in NEGATIVE_WORDS)
        scores = {"negative": 0.9 if negative else 0.05, "neutral": 0.05 if negative else 0.9,
                  "positive": 0.05}
        sentiment = SentimentPrediction("negative" if negative else "neutral", 0.9, scores)
        state = (frustration or Frustration()).update(sentiment)
        return Analysis(text, np.zeros(4, dtype=np.float32), prediction, sentiment, state,
                        self.entities.extract(text))


def runtime_for(root: Path, embedder: SentenceEmbedder,
                analyzer: MessageAnalyzer | None) -> BotRuntime:
    """A runtime whose router uses ``analyzer`` (the FAQ index is built here)."""
    bot: BotDefinition = load_bot(root)
    build_index(bot, embedder, progress=False)
    knowledge = load_knowledge(bot, embedder)
    store = open_session_store(bot)
    router = Router(bot.config, FaqAnswerer(bot.config, knowledge), analyzer=analyzer)
    dialogue = DialogueManager(bot.config, router=router, store=store)
    return BotRuntime(bot, dialogue, store, knowledge)


async def client_for(runtime: BotRuntime) -> TestClient:  # type: ignore[type-arg]
    client = TestClient(TestServer(create_app(runtime.bot, runtime=runtime)))
    await client.start_server()
    return client


@pytest.fixture
async def dialogue_client(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, backend: str,
                          embedder: SentenceEmbedder
                          ) -> AsyncIterator[tuple[BotRuntime, TestClient]]:  # type: ignore[type-arg]
    """The dialogue test bot (a fake analyzer, the backend stand-in) served on loopback."""
    runtime = runtime_for(make_dialogue_bot(make_bot, monkeypatch, backend), embedder,
                          FakeAnalyzer())
    client = await client_for(runtime)
    yield runtime, client
    await client.close()


Say = Callable[[str], Any]


def sayer(client: TestClient, sender: str) -> Callable[[str], Any]:  # type: ignore[type-arg]
    """``await say("text")`` posts to the REST channel and returns the reply JSON."""

    async def say(text: str) -> dict[str, Any]:
        response = await client.post("/webhooks/rest", json={"sender": sender, "message": text})
        assert response.status == 200, await response.text()
        (reply,) = await response.json()
        return dict(reply)

    return say


def auth(token: str = AGENT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, default=str)
