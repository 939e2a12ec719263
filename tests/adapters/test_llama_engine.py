"""The llama.cpp engine: GGUF conversion, the supervised llama-server, per-request adapters.

These run the real ``llama-server`` that ``scripts/install.sh`` builds (``bot engine build``),
with one thread: torch runs in this process between the server's answers, and two llama.cpp
threads sharing the cores with it slow down by an order of magnitude (benchmarks/README.md).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from adapters.engines.answers import GenerationRequest
from adapters.engines.base_model import load_base_model
from adapters.engines.choice import EngineChoice, engine_for, local_model
from adapters.engines.generation import DialogueModel
from adapters.engines.gguf_files import export_base, export_lora, read_gguf, read_lora
from adapters.engines.llama_model import (
    ADAPTER_GGUF,
    LlamaCppDialogueModel,
    engine_base_file,
    merged_gguf,
    source_gguf,
)
from adapters.engines.llama_server import BINARY_ENV, LlamaServer, ServerOptions, find_binary
from adapters.engines.remote_model import RemoteDialogueModel
from adapters.errors import ModelError
from adapters.settings import ModelServerSettings
from bot.definition.config import ModelSettings
from retrieval.documents import Passage

PROMPTS = ("How do I reset my password?", "What are your opening hours?",
           "Tell me about card fees abroad.")
TOKENS = 20
PASSAGE = Passage(id="card-abroad", text="Card payments abroad are free; ATM withdrawals "
                  "abroad cost 2 EUR each.", source="faq/fees.yaml",
                  question="Do you charge fees abroad?")


def _tokens(server: LlamaServer, path: str, body: dict[str, Any], timeout: float) -> list[int]:
    """The ``tokens`` of the server's reply to ``body`` posted to ``path``."""
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}",
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        tokens: list[int] = json.load(response)["tokens"]
    return tokens


def _completion(server: LlamaServer, ids: list[int], lora: list[dict[str, Any]]) -> list[int]:
    body = {"prompt": ids, "n_predict": TOKENS, "temperature": 0, "lora": lora,
            "return_tokens": True}
    return _tokens(server, "/completion", body, 180)


@pytest.fixture(scope="module")
def f32_base() -> Path:
    """The packaged base model as an F32 GGUF: exactly the weights transformers runs."""
    return engine_base_file(ModelSettings(gguf_type="F32"))


def test_converted_adapter_gives_the_same_greedy_tokens_as_peft(
        random_adapters: list[Path], f32_base: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel

    base = load_base_model(ModelSettings())
    tokenizer = base.tokenizer
    model = PeftModel.from_pretrained(base.model, str(random_adapters[0])).eval()
    gguf = tmp_path / "adapter.gguf"
    export_lora(random_adapters[0], f32_base, gguf)
    prompts = [tokenizer(tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False),
        add_special_tokens=False)["input_ids"] for text in PROMPTS]

    def peft_tokens(ids: list[int], tuned: bool) -> list[int]:
        with torch.no_grad(), (model.disable_adapter() if not tuned else torch.no_grad()):
            out = model.generate(torch.tensor([ids]), max_new_tokens=TOKENS, do_sample=False)
        result: list[int] = out[0, len(ids):].tolist()
        return result

    server = LlamaServer(f32_base, [("a", gguf)], ServerOptions(threads=1, parallel=1)).start()
    try:
        for ids in prompts:
            tuned, plain = peft_tokens(ids, True), peft_tokens(ids, False)
            assert tuned != plain  # the adapter changes the answer, so the match means something
            assert _completion(server, ids, [{"id": 0, "scale": 1.0}])[:len(tuned)] == tuned
            assert _completion(server, ids, [{"id": 0, "scale": 0.0}])[:len(plain)] == plain
    finally:
        server.stop()


def test_merged_model_gives_the_same_greedy_tokens_as_the_runtime_adapter(
        random_adapters: list[Path], f32_base: Path, tmp_path: Path) -> None:
    """F32 throughout, so merging (W + alpha/r * B @ A) is the only difference."""
    lora, merged = tmp_path / "adapter.gguf", tmp_path / "merged.gguf"
    export_lora(random_adapters[0], f32_base, lora)
    source = source_gguf(ModelSettings())
    export_base(source, merged, "F32", read_lora(random_adapters[0], source))
    options = ServerOptions(threads=1, parallel=1)
    runtime = LlamaServer(f32_base, [("a", lora)], options).start()
    try:
        ids = [runtime_tokens(runtime, text) for text in PROMPTS]
        tuned = [_completion(runtime, prompt, [{"id": 0, "scale": 1.0}]) for prompt in ids]
        plain = [_completion(runtime, prompt, [{"id": 0, "scale": 0.0}]) for prompt in ids]
    finally:
        runtime.stop()
    assert tuned != plain  # the adapter changes the answers, so the match means something
    server = LlamaServer(merged, [], options).start()
    try:
        assert [_completion(server, prompt, []) for prompt in ids] == tuned
    finally:
        server.stop()


def runtime_tokens(server: LlamaServer, text: str) -> list[int]:
    """``text`` as a chat prompt, tokenised by the server."""
    body = {"content": f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n",
            "add_special": False, "parse_special": True}
    return _tokens(server, "/tokenize", body, 60)


def test_a_single_bots_engine_runs_its_merged_model(random_adapters: list[Path]) -> None:
    model = LlamaCppDialogueModel(ModelSettings(max_new_tokens=TOKENS, max_batch=1))
    model.add_adapter("bot0", random_adapters[0])
    try:
        model.load()
        assert model._server is not None and model._server.loras == []
        assert model._server.model == merged_gguf(model.settings, random_adapters[0])
        assert "--no-repack" not in model._server.command()
        assert _ask(model, "bot0")
        with pytest.raises(ModelError, match="'bot0''s adapter merged into its model; it "
                                             "cannot answer for 'the base model'"):
            _ask(model, None)
    finally:
        model.close()


@pytest.fixture(scope="module")
def engine(random_adapters: list[Path]) -> Any:
    """The default engine (Q8_0) with two bots' adapters on one loaded base."""
    model = LlamaCppDialogueModel(ModelSettings(max_new_tokens=TOKENS, max_batch=2))
    for n, path in enumerate(random_adapters):
        model.add_adapter(f"bot{n}", path)
    yield model.load()
    model.close()


def _ask(engine: LlamaCppDialogueModel, adapter: str | None) -> str:
    answer = engine.generate(GenerationRequest(PROMPTS[2], [PASSAGE], adapter=adapter))
    assert answer.tokens > 0
    return answer.text


def test_each_request_picks_its_bots_adapter_on_one_server(engine: LlamaCppDialogueModel,
                                                           random_adapters: list[Path]) -> None:
    assert all((path / ADAPTER_GGUF).is_file() for path in random_adapters)
    first, second, plain = _ask(engine, "bot0"), _ask(engine, "bot1"), _ask(engine, None)
    assert len({first, second, plain}) == 3
    assert _ask(engine, "bot0") == first  # no cache from the other adapter leaks in
    with pytest.raises(ModelError, match="unknown adapter 'nope'; loaded adapters: bot0, bot1"):
        _ask(engine, "nope")


async def test_streams_deltas_that_add_up_to_the_answer(engine: LlamaCppDialogueModel) -> None:
    stream = engine.stream(GenerationRequest(PROMPTS[2], [PASSAGE], adapter="bot0"))
    deltas = [delta async for delta in stream]
    assert stream.answer is not None and len(deltas) > 1
    assert "".join(deltas).strip() == stream.answer.text.strip()


def test_a_dead_engine_is_restarted_by_the_next_answer(engine: LlamaCppDialogueModel) -> None:
    before = _ask(engine, "bot1")
    server = engine._server
    assert server is not None and server._process is not None
    server._process.kill()
    server._process.wait()
    assert _ask(engine, "bot1") == before and server.running


def test_shared_server_selects_the_adapter_by_lora_id(engine: LlamaCppDialogueModel) -> None:
    """A llama-server shared by several workers: ``model.server.lora_id`` picks the adapter."""
    assert engine._server is not None
    url = engine._server.url
    settings = ModelSettings(max_new_tokens=TOKENS, server=ModelServerSettings(
        url=url, model="base", lora_id=1))
    shared = RemoteDialogueModel(settings).generate(
        GenerationRequest(PROMPTS[2], [PASSAGE]))
    assert shared.text == _ask(engine, "bot1")


def test_missing_binary_names_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "nowhere" / "llama-server"))
    with pytest.raises(ModelError, match="not an executable file"):
        find_binary()


def test_corrupt_or_foreign_files_are_named(tmp_path: Path, random_adapters: list[Path],
                                            f32_base: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(f32_base.read_bytes()[:200_000])  # truncated
    with pytest.raises(ModelError, match=f"{broken} is not a readable GGUF file"):
        read_gguf(broken)
    with pytest.raises(ModelError, match=str(broken)):
        export_base(broken, tmp_path / "out.gguf", "Q8_0")
    assert not list(tmp_path.glob("*out.gguf*"))  # nothing half-written
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 16)  # valid, but no model in it
    with pytest.raises(ModelError, match=f"{empty} holds no model"):
        export_base(empty, tmp_path / "out.gguf", "Q8_0")
    # an adapter GGUF given as the base model: the server refuses it with its own words
    lora = tmp_path / "lora.gguf"
    export_lora(random_adapters[0], f32_base, lora)
    with pytest.raises(ModelError, match=r"llama-server stopped while loading .*lora\.gguf"):
        LlamaServer(lora, [], ServerOptions(threads=1, parallel=1)).start(timeout_s=60)
    # a damaged adapter.gguf next to a good peft adapter is named before any server starts
    copy = tmp_path / "adapter"
    shutil.copytree(random_adapters[1], copy)
    (copy / ADAPTER_GGUF).write_bytes(b"not gguf")
    with pytest.raises(ModelError, match=f"{copy / ADAPTER_GGUF} is not a readable GGUF"):
        LlamaCppDialogueModel(ModelSettings()).add_adapter("x", copy)


def test_adapter_for_another_base_is_refused(random_adapters: list[Path]) -> None:
    other = dataclasses.replace(ModelSettings(), base=str(_other_base()))
    with pytest.raises(ModelError, match="trained for base model 'smollm2-135m'"):
        LlamaCppDialogueModel(other).add_adapter("x", random_adapters[0])


def _other_base() -> Path:
    """A GGUF base that is not the packaged one (its Q8_0 export, another file)."""
    return engine_base_file(ModelSettings())


def test_engine_needs_a_gguf_base(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="needs a GGUF base model"):
        engine_base_file(ModelSettings(base=str(folder)))


def test_engine_and_server_settings_must_agree() -> None:
    with pytest.raises(ValueError, match=r"'server' and a model\.server section go together"):
        ModelSettings(engine="server")
    with pytest.raises(ValueError, match="engine is 'transformers', server is set"):
        ModelSettings(engine="transformers",
                      server=ModelServerSettings(url="http://127.0.0.1:1/v1", model="m"))


def test_one_choice_of_engine() -> None:
    """``model.engine``, or unset: ``server`` with a ``model.server`` section, else llama.cpp."""
    server = ModelServerSettings(url="http://127.0.0.1:1/v1", model="m")
    assert engine_for(ModelSettings()) == EngineChoice("llama.cpp")
    assert engine_for(ModelSettings(server=server)) == EngineChoice("server")
    assert engine_for(ModelSettings(engine="server", server=server)) == EngineChoice("server")
    assert engine_for(ModelSettings(engine="transformers")) == EngineChoice("transformers")
    assert [(c.local, c.llama_cpp) for c in map(EngineChoice, ("llama.cpp", "transformers",
                                                                "server"))] == \
        [(True, True), (True, False), (False, False)]
    assert isinstance(local_model(ModelSettings()), LlamaCppDialogueModel)
    assert isinstance(local_model(ModelSettings(engine="transformers")), DialogueModel)
    with pytest.raises(ModelError, match="runs no model in this process"):
        local_model(ModelSettings(server=server))
