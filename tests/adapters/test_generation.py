"""DialogueModel: rule answers, token limits, streaming, citations and adapter switching."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.engines.generation import DialogueModel, GeneratedAnswer, GenerationRequest
from adapters.engines.prompting import NO_ANSWER
from adapters.errors import ModelError, NotTrainedError
from bot.definition.config import ModelSettings, Persona
from retrieval.documents import Passage

SETTINGS = ModelSettings(max_new_tokens=12)
CARD = Passage("card-not-arrived", "Cards arrive within 5-7 working days. After 10 days we send "
               "a new one.", "faq.yaml", title="My card has not arrived",
               question="My card has not arrived")
PIN = Passage("reset-pin", "Open the app, go to Card settings and choose Reset PIN.", "faq.yaml",
              title="How do I reset my PIN?", question="How do I reset my PIN?")
REQUEST = GenerationRequest("where is my card?", [CARD, PIN], persona=Persona(name="Ava"))


@pytest.fixture(scope="module")
def model() -> DialogueModel:
    return DialogueModel(SETTINGS).load()


@pytest.fixture(scope="module")
def adapter_paths(model: DialogueModel, random_adapters: list[Path]) -> list[Path]:
    """The two random adapters loaded into ``model`` as bot1 and bot2."""
    for n, path in enumerate(random_adapters):
        model.add_adapter(f"bot{n + 1}", path)
    return random_adapters


def test_constructor_is_cheap() -> None:
    lazy = DialogueModel(SETTINGS)
    with pytest.raises(ModelError, match="not loaded"):
        lazy.base  # noqa: B018


def test_no_passages_means_a_rule_answer_without_the_model() -> None:
    answer = DialogueModel(SETTINGS).generate(GenerationRequest("what is the meaning of life?"))
    assert answer == GeneratedAnswer(NO_ANSWER, (), True, 0, 0.0, None)
    custom = DialogueModel(SETTINGS).generate(GenerationRequest("x", no_answer="Ask a human."))
    assert custom.text == "Ask a human."


def test_max_new_tokens_is_honoured(model: DialogueModel) -> None:
    short = model.generate(dataclasses.replace(REQUEST, max_new_tokens=4))
    assert 0 < short.tokens <= 4
    default = model.generate(REQUEST)
    assert short.tokens < default.tokens <= SETTINGS.max_new_tokens
    assert set(default.cited_ids) <= {"card-not-arrived", "reset-pin"}
    assert "[" not in default.text or "]" not in default.text


def test_prompt_contains_passage_ids_and_question(model: DialogueModel) -> None:
    ids = model.prompt_ids(REQUEST)["input_ids"][0]
    prompt = model.base.tokenizer.decode(ids)
    assert "[card-not-arrived] My card has not arrived: Cards arrive" in prompt
    assert prompt.rstrip().endswith("<|im_start|>assistant")


async def test_stream_yields_the_same_text_as_generate(model: DialogueModel) -> None:
    expected = model.generate(REQUEST)
    stream = model.stream(REQUEST)
    deltas = [delta async for delta in stream]
    assert len(deltas) > 1
    assert "".join(deltas) == expected.text
    assert stream.answer is not None
    assert stream.answer.cited_ids == expected.cited_ids
    assert stream.answer.tokens == expected.tokens


async def test_stream_can_be_stopped_early(model: DialogueModel) -> None:
    stream = model.stream(dataclasses.replace(REQUEST, max_new_tokens=40))
    await anext(stream)
    await stream.aclose()
    assert stream.answer is not None and stream.answer.tokens < 40


async def test_stream_of_a_rule_answer() -> None:
    stream = DialogueModel(SETTINGS).stream(GenerationRequest("hello?"))
    assert [d async for d in stream] == [NO_ANSWER]


def test_adapters_switch_correctly_under_concurrent_requests(
        model: DialogueModel, adapter_paths: list[Path]) -> None:
    names = [None, "bot1", "bot2"]
    alone = {name: model.generate(dataclasses.replace(REQUEST, adapter=name)).text
             for name in names}
    assert len(set(alone.values())) == 3, alone  # each adapter really changes the output
    mixed = [names[i % 3] for i in range(7)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(
            lambda name: model.generate(dataclasses.replace(REQUEST, adapter=name)), mixed))
    assert [r.text for r in results] == [alone[name] for name in mixed]
    assert [r.adapter for r in results] == mixed


async def test_concurrent_streams_do_not_mix_adapters(
        model: DialogueModel, adapter_paths: list[Path]) -> None:
    async def run(name: str | None) -> str:
        return "".join([d async for d in model.stream(dataclasses.replace(REQUEST,
                                                                          adapter=name))])

    texts = await asyncio.gather(run("bot1"), run(None), run("bot2"))
    for name, text in zip(["bot1", None, "bot2"], texts, strict=True):
        assert text == model.generate(dataclasses.replace(REQUEST, adapter=name)).text


def test_hot_swap_replaces_an_adapter(model: DialogueModel, adapter_paths: list[Path]) -> None:
    second = model.generate(dataclasses.replace(REQUEST, adapter="bot2")).text
    model.add_adapter("swap", adapter_paths[0])
    first = model.generate(dataclasses.replace(REQUEST, adapter="swap")).text
    model.add_adapter("swap", adapter_paths[1])
    assert model.generate(dataclasses.replace(REQUEST, adapter="swap")).text == second != first
    model.remove_adapter("swap")
    assert "swap" not in model.adapters


def test_adapter_errors(model: DialogueModel, adapter_paths: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown adapter 'nobody'"):
        model.generate(dataclasses.replace(REQUEST, adapter="nobody"))
    with pytest.raises(NotTrainedError, match="bot train"):
        model.add_adapter("missing", tmp_path / "missing")
    foreign = tmp_path / "foreign"
    shutil.copytree(adapter_paths[0], foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    manifest["base"]["fingerprint"] = "sha256:another-model"
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="trained for base model"):
        model.add_adapter("foreign", foreign)
    (foreign / "adapter_model.safetensors").unlink()
    with pytest.raises(ModelError, match="incomplete or damaged"):
        model.add_adapter("foreign", foreign)
