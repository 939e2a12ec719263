"""RemoteDialogueModel against a stand-in OpenAI-compatible server on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.engines.answers import GeneratedAnswer, GenerationRequest, is_degenerate, rule_answer
from adapters.engines.generation import DialogueModel
from adapters.engines.prompting import PromptTurn, build_messages
from adapters.engines.remote_model import RemoteDialogueModel
from adapters.errors import ModelError
from adapters.settings import ModelServerSettings, ModelSettings, Persona
from bot.build import build_index, train_policy
from bot.definition.loader import load_bot
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.documents import Passage
from retrieval.embedder import SentenceEmbedder

from ..conftest import BOT_YAML, MakeBot

API_KEY = "sk-test-secret-4711"
CARD = Passage("card-not-arrived", "Cards arrive within 5-7 working days. After 10 days we send "
               "a new one.", "faq.yaml", title="My card has not arrived",
               question="My card has not arrived")
PIN = Passage("reset-pin", "Open the app, go to Card settings and choose Reset PIN.", "faq.yaml",
              title="How do I reset my PIN?", question="How do I reset my PIN?")
REQUEST = GenerationRequest("where is my card?", [CARD, PIN], persona=Persona(name="Ava"),
                            history=[PromptTurn("user", "hello"), PromptTurn("assistant", "Hi!")],
                            adapter="acme_bank")
# the marker is cut across chunks, as a tokenizer would
PIECES = ["Cards arrive", " within 5-7", " working days.", " [card-", "not-arr", "ived]"]


def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    """One streamed chunk, shaped as OpenAI's chat.completion.chunk."""
    data = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "served", "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()


@dataclass
class StandIn:
    """An OpenAI-compatible chat-completions server that records what it receives."""

    url: str = ""
    pieces: list[str] = field(default_factory=lambda: list(PIECES))
    mode: str = "ok"  # ok | error | stall | stall-mid | garbage | slow
    requests: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.requests.append({"path": request.path, "headers": dict(request.headers),
                              "body": await request.json()})
        if self.mode == "error":  # a body that echoes the key: the error must mask it
            return web.Response(status=500, text="CUDA out of memory (auth: "
                                f"{request.headers.get('Authorization')})")
        if self.mode == "stall":
            await self._stall()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            if self.mode == "garbage":
                await response.write(b"data: {\"choices\": [oops\n\n")
            for piece in self.pieces:
                await response.write(chunk({"content": piece}))
                self.sent += 1
                if self.mode == "stall-mid":
                    await self._stall()
                if self.mode == "slow":
                    await asyncio.sleep(0.05)
            await response.write(chunk({}, "stop"))
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    async def _stall(self) -> None:
        with contextlib.suppress(TimeoutError):  # released at teardown, at the latest
            await asyncio.wait_for(self.release.wait(), 10)


@contextlib.asynccontextmanager
async def running_stand_in() -> AsyncIterator[StandIn]:
    """A :class:`StandIn` listening on loopback while the block runs."""
    server_state = StandIn()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server_state.completions)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    server_state.url = f"http://127.0.0.1:{server.port}/v1"
    try:
        yield server_state
    finally:
        server_state.release.set()
        await server.close()


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    async with running_stand_in() as server_state:
        yield server_state


def remote(url: str, *, adapter: str | None = None, timeout_s: float = 5.0,
           max_new_tokens: int = 32) -> RemoteDialogueModel:
    server = ModelServerSettings(url=url, model="smollm2", adapter=adapter, api_key=API_KEY,
                                 timeout_s=timeout_s)
    return RemoteDialogueModel(ModelSettings(max_new_tokens=max_new_tokens, server=server))


async def collect(model: RemoteDialogueModel,
                  request: GenerationRequest) -> tuple[list[str], GeneratedAnswer]:
    stream = model.stream(request)
    deltas = [delta async for delta in stream]
    await stream.aclose()
    assert stream.answer is not None
    return deltas, stream.answer


async def test_streamed_answer_without_markers_and_with_citations(stand_in: StandIn) -> None:
    deltas, answer = await collect(remote(stand_in.url), REQUEST)
    assert "".join(deltas) == answer.text == "Cards arrive within 5-7 working days."
    assert all("[" not in d and "]" not in d for d in deltas) and len(deltas) > 1
    assert answer.cited_ids == answer.marked_ids == ("card-not-arrived",)
    assert not answer.declined and answer.adapter == "acme_bank"
    assert answer.tokens == len(PIECES) and answer.first_token_seconds is not None


async def test_citations_are_verified_like_the_local_model(stand_in: StandIn) -> None:
    stand_in.pieces = ["Open the app, go to Card settings and choose Reset PIN. ",
                       "[card-not-arrived]"]  # copies one passage, marks the other
    answer = await remote(stand_in.url).agenerate(REQUEST)
    assert answer.marked_ids == ("card-not-arrived",)
    assert answer.cited_ids == ("reset-pin",)


async def test_request_body_and_headers(stand_in: StandIn) -> None:
    settings = remote(stand_in.url).settings
    await remote(stand_in.url).agenerate(REQUEST)
    await remote(stand_in.url).agenerate(dataclasses.replace(REQUEST, adapter=None,
                                                             max_new_tokens=7))
    first, second = stand_in.requests
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {API_KEY}"
    body = first["body"]
    assert body["messages"] == build_messages(
        REQUEST.persona, REQUEST.question, REQUEST.passages, history=REQUEST.history,
        history_turns=settings.history_turns, max_words=settings.passage_words)
    system, *_history, user = body["messages"]
    assert system["role"] == "system" and "You are Ava" in system["content"]
    assert "[card-not-arrived]" in user["content"] and "[reset-pin]" in user["content"]
    assert "where is my card?" in user["content"]
    assert (body["model"], body["max_tokens"], body["temperature"], body["stream"]) == (
        "acme_bank", 32, 0, True)
    assert (second["body"]["model"], second["body"]["max_tokens"]) == ("smollm2", 7)


async def test_no_passages_is_the_rule_answer_without_a_call(stand_in: StandIn) -> None:
    request = GenerationRequest("what is the meaning of life?", no_answer="Ask a human.")
    deltas, answer = await collect(remote(stand_in.url), request)
    assert deltas == ["Ask a human."] and answer == rule_answer(request)
    assert stand_in.requests == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def check_error(info: pytest.ExceptionInfo[ModelError], url: str, *words: str) -> None:
    message = str(info.value)
    assert url in message and API_KEY not in message, message
    assert all(word in message for word in words), message


async def test_server_error_names_status_body_and_url_but_not_the_key(
        stand_in: StandIn) -> None:
    stand_in.mode = "error"
    with pytest.raises(ModelError) as info:
        await remote(stand_in.url).agenerate(REQUEST)
    check_error(info, stand_in.url, "HTTP 500", "CUDA out of memory")


async def test_refused_connection() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(ModelError) as info:
        await remote(url).agenerate(REQUEST)
    check_error(info, url, "failed")
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("mode", ["stall", "stall-mid"])
async def test_a_stalled_server_times_out(stand_in: StandIn, mode: str) -> None:
    stand_in.mode = mode
    with pytest.raises(ModelError) as info:
        await remote(stand_in.url, timeout_s=0.5).agenerate(REQUEST)
    check_error(info, stand_in.url, "did not answer within 0.5 s")
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_malformed_stream(stand_in: StandIn) -> None:
    stand_in.mode = "garbage"
    with pytest.raises(ModelError) as info:
        await remote(stand_in.url).agenerate(REQUEST)
    check_error(info, stand_in.url, "malformed JSON")
    assert isinstance(info.value.__cause__, ValueError)


async def test_aclose_mid_stream_cancels_the_request(stand_in: StandIn) -> None:
    stand_in.mode, stand_in.pieces = "slow", ["Cards arrive"] + [" soon"] * 60
    stream = remote(stand_in.url).stream(REQUEST)
    assert await stream.__anext__() == "Cards arrive"
    await stream.aclose()
    await asyncio.wait_for(stand_in.disconnected.wait(), 3)
    assert stand_in.sent < len(stand_in.pieces)
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert stream.answer is not None and stream.answer.text.startswith("Cards arrive")


SERVER_BOT = BOT_YAML + """
model:
  generation: true
  exact_answer_threshold: 1.0
  server:
    url: {url}
    model: smollm2
    adapter: test_bot
    api_key: ${{TEST_MODEL_SERVER_KEY}}
"""


async def test_a_bot_answers_through_the_model_server(
        make_bot: MakeBot, embedder: SentenceEmbedder, stand_in: StandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_local_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the local dialogue model must not load")

    monkeypatch.setattr(DialogueModel, "__init__", no_local_model)
    monkeypatch.setenv("TEST_MODEL_SERVER_KEY", API_KEY)
    bot = load_bot(make_bot(SERVER_BOT.format(url=stand_in.url)))
    assert API_KEY not in repr(bot.config)
    index, _ = build_index(bot, embedder, progress=False)  # no `bot train`: no local adapter
    train_policy(bot, index, embedder)
    runtime = await BotRuntime.aload(bot)
    try:
        question = "my new card still has not been delivered to me"
        reply = await runtime.dialogue.handle(UserMessage("u1", question))
    finally:
        await runtime.close()
    assert reply.kind == "generated", reply
    assert reply.text == "Cards arrive within 5-7 working days."
    assert [c.passage_id for c in reply.citations] == ["card-not-arrived"]
    (seen,) = stand_in.requests
    assert seen["body"]["model"] == "test_bot"
    assert seen["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert question in seen["body"]["messages"][-1]["content"]


async def test_a_looping_answer_is_stopped_and_replaced_by_the_faq_answer(
        make_bot: MakeBot, embedder: SentenceEmbedder, stand_in: StandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The release case: the model said "I'm sorry, " 24 times; the customer never sees it."""
    stand_in.pieces, stand_in.mode = [" I'm", " sorry,"] * 24, "slow"
    monkeypatch.setenv("TEST_MODEL_SERVER_KEY", API_KEY)
    bot = load_bot(make_bot(SERVER_BOT.format(url=stand_in.url)))
    train_policy(bot, build_index(bot, embedder, progress=False)[0], embedder)
    runtime = await BotRuntime.aload(bot)
    try:
        reply = await runtime.dialogue.handle(
            UserMessage("u1", "my new card still has not been delivered to me"))
    finally:
        await runtime.close()
    assert reply.kind == "faq" and "sorry" not in reply.text
    assert reply.text.startswith("Cards arrive within 5-7 working days.")
    assert [c.passage_id for c in reply.citations] == ["card-not-arrived"]
    await asyncio.wait_for(stand_in.disconnected.wait(), 3)
    assert stand_in.sent < len(stand_in.pieces)  # generation stopped at the third "sorry"


def test_loops_are_told_from_answers() -> None:
    for looping in ("I'm sorry, I'm sorry, I'm sorry, I'm sorry", "no no no no",
                    "The answer is: 2 EUR. The answer is: 2 EUR. The answer is: 2",
                    "change the default behavior of the default behavior of the default behavior"):
        assert is_degenerate(looping), looping
    for fine in ("Cards arrive within 5-7 working days. After 10 days we send a new one.",
                 "Yes, yes. We can help.", "Fees: 1 EUR, 1 EUR for ATM withdrawals abroad."):
        assert not is_degenerate(fine), fine


async def test_adapter_selection_on_vllm_and_on_a_shared_llama_server(stand_in: StandIn) -> None:
    """vLLM serves each bot's adapter as a model name (``--lora-modules bot=PATH``); a shared
    llama.cpp server (``--lora`` files) takes the adapter's id in the ``lora`` field."""
    await collect(remote(stand_in.url, adapter="acme_bank"), REQUEST)
    shared = ModelServerSettings(url=stand_in.url, model="base", lora_id=2)
    await collect(RemoteDialogueModel(ModelSettings(server=shared)), REQUEST)
    local = RemoteDialogueModel(ModelSettings(), server=ModelServerSettings(
        url=stand_in.url, model="base"), lora_ids={"a": 0, "acme_bank": 1})
    await collect(local, REQUEST)
    vllm, llama_shared, llama_local = (r["body"] for r in stand_in.requests)
    assert vllm["model"] == "acme_bank" and "lora" not in vllm
    assert llama_shared["model"] == "base"
    assert llama_shared["lora"] == [{"id": 2, "scale": 1.0}]
    assert llama_local["lora"] == [{"id": 0, "scale": 0.0}, {"id": 1, "scale": 1.0}]
