"""FAQ turns answered by the dialogue model: train a tiny adapter, serve it over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.engines.answers import GenerationRequest
from adapters.engines.llama_model import LlamaCppDialogueModel
from adapters.engines.remote_model import RemoteAnswerStream
from bot.build import build_index, train
from bot.definition.loader import load_bot
from bot.errors import ConfigError, NotTrainedError
from bot.runtime import BotRuntime
from bot.server.app import RUNTIME, create_app
from bot.sessions.store import Session
from tests.conftest import BOT_YAML, FAQ_YAML

GENERATION_YAML = BOT_YAML + """
model:
  generation: true
  exact_answer_threshold: 0.97
  max_new_tokens: 12
  lora: {r: 4, alpha: 8, batch_size: 2, max_length: 320, max_steps: 2}
"""
PARAPHRASE = "it's been a week and the card you mailed me still isn't here"


@pytest.fixture(scope="module")
def trained_bot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    root = tmp_path_factory.mktemp("bots") / "gen_bot"
    (root / "faq").mkdir(parents=True)
    (root / "bot.yaml").write_text(GENERATION_YAML)
    (root / "faq" / "main.yaml").write_text(FAQ_YAML)
    return root, train(load_bot(root), progress=False)


@pytest.fixture
def requests_seen(monkeypatch: pytest.MonkeyPatch) -> list[GenerationRequest]:
    """Records every request that reaches the real model (llama.cpp, the default engine)."""
    seen: list[GenerationRequest] = []
    real = LlamaCppDialogueModel.stream

    def spy(self: LlamaCppDialogueModel, request: GenerationRequest) -> RemoteAnswerStream:
        seen.append(request)
        return real(self, request)

    monkeypatch.setattr(LlamaCppDialogueModel, "stream", spy)
    return seen


@pytest.fixture
async def client(trained_bot: tuple[Path, list[Any]]) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(load_bot(trained_bot[0])))) as client:
        yield client


def test_train_builds_the_adapter_once(trained_bot: tuple[Path, list[Any]]) -> None:
    root, first = trained_bot
    steps = {r.step: r for r in first}
    assert steps["dialogue adapter"].rebuilt
    assert "2 steps" in steps["dialogue adapter"].detail
    assert steps["llama.cpp files"].rebuilt
    assert (root / ".bot" / "adapter" / "adapter.gguf").is_file()
    again = {r.step: r for r in train(load_bot(root), progress=False)}
    assert not again["dialogue adapter"].rebuilt and not again["llama.cpp files"].rebuilt


async def _say(client: TestClient, sender: str, text: str) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await client.post("/webhooks/rest", json={"sender": sender, "message": text})
    assert response.status == 200, await response.text()
    replies = await response.json()
    assert len(replies) == 1
    reply: dict[str, Any] = replies[0]
    return reply


async def test_confident_match_takes_the_exact_answer_fast_path(
        client: TestClient, requests_seen: list[GenerationRequest]) -> None:  # type: ignore[type-arg]
    reply = await _say(client, "u1", "My card has not arrived yet")
    assert reply["kind"] == "faq"
    assert reply["text"].startswith("Cards arrive within 5-7 working days.")
    assert [c["passage_id"] for c in reply["citations"]] == ["card-not-arrived"]
    assert requests_seen == []


async def test_paraphrase_is_generated_from_the_passages_with_history(
        client: TestClient, requests_seen: list[GenerationRequest]) -> None:  # type: ignore[type-arg]
    await _say(client, "u2", "My card has not arrived yet")
    reply = await _say(client, "u2", PARAPHRASE)
    assert len(requests_seen) == 1
    request = requests_seen[0]
    assert request.adapter == "test_bot"
    assert request.question == PARAPHRASE
    assert "card-not-arrived" in [p.id for p in request.passages]
    assert [t.role for t in request.history] == ["user", "assistant"]
    assert request.history[0].text == "My card has not arrived yet"
    assert reply["kind"] in {"generated", "fallback"} and reply["text"]
    assert {c["passage_id"] for c in reply["citations"]} <= {p.id for p in request.passages}


async def test_unrelated_question_falls_back_without_the_model(
        client: TestClient, requests_seen: list[GenerationRequest]) -> None:  # type: ignore[type-arg]
    reply = await _say(client, "u3", "what is the boiling point of tungsten")
    assert reply["kind"] == "fallback"
    assert reply["text"].startswith("Sorry, I do not know.")
    assert requests_seen == []


async def test_streamed_deltas_add_up_to_the_reply(
        trained_bot: tuple[Path, list[Any]], requests_seen: list[GenerationRequest]) -> None:
    runtime = await BotRuntime.aload(load_bot(trained_bot[0]))
    try:
        from foundation.messages import UserMessage

        stream = runtime.dialogue.stream(UserMessage("u4", PARAPHRASE))
        deltas = [delta async for delta in stream]
        final = stream.reply
        assert final is not None and len(deltas) > 1 and len(requests_seen) == 1
        assert "".join(deltas).strip() == final.text.strip()
    finally:
        await runtime.close()


def test_missing_adapter_is_a_clear_startup_error(make_bot: Any, embedder: Any) -> None:
    bot = load_bot(make_bot(GENERATION_YAML))
    build_index(bot, embedder)  # the index is there, the adapter is not
    with pytest.raises(NotTrainedError, match="run `bot train` first"):
        BotRuntime.load(bot)


def test_generation_needs_an_faq(make_bot: Any) -> None:
    root = make_bot("name: b\nmodel:\n  generation: true\n", files={})
    with pytest.raises(ConfigError, match=r"bot.yaml:3: model.generation: grounded generation"):
        load_bot(root)


def test_eval_generation_compares_base_and_adapter(
        trained_bot: tuple[Path, list[Any]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    root = trained_bot[0]
    (root / "eval").mkdir(exist_ok=True)
    (root / "eval" / "faq_paraphrases.yaml").write_text(
        "- id: transfer-time\n  questions: [when does money sent abroad arrive]\n"
        "- id: reset-pin\n  questions: [i forgot my pin number]\n")
    out = tmp_path / "reports"
    assert main(["eval", str(root), "--generation", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "answer_f1" in printed and "lora" in printed and "base" in printed
    results = json.loads((out / "generation_report.json").read_text())
    assert [r["model"] for r in results] == ["base", "lora"]
    assert all(r["questions"] == 2 and 0.0 <= r["answer_f1"] <= 1.0 for r in results)


async def test_a_passage_is_quoted_not_generated_for_a_customer_in_another_language(
        client: TestClient, requests_seen: list[GenerationRequest]) -> None:  # type: ignore[type-arg]
    """The dialogue model was tuned and measured in the bot's language only: the FAQ stage
    asks for the passage as written when the customer writes in another (``quote``)."""
    answerer = client.app[RUNTIME].dialogue.router.answerer
    hits = await answerer.retrieve(PARAPHRASE)
    session = Session("rest:u9", "rest", "u9", time.time(), time.time())
    generated = await answerer.answer(session, PARAPHRASE, hits, decided=True)
    quoted = await answerer.answer(session, PARAPHRASE, hits, decided=True, quote=True)
    assert generated is not None and quoted is not None
    await generated.result()
    assert len(requests_seen) == 1  # as the bot's own language is answered
    reply = await quoted.result()
    assert len(requests_seen) == 1  # no second request: quoted
    assert reply.kind == "faq" and reply.text == hits[0].passage.text
