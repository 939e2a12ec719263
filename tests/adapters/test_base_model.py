"""Base model resolution, loading through the safetensors cache, errors and fingerprints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapters.engines.base_model import (
    BaseModel,
    base_fingerprint,
    cache_dir,
    ensure_chat_template,
    folder_fingerprint,
    load_base_model,
    resolve_base,
)
from adapters.errors import ModelError
from bot.definition.config import ModelSettings

PACKAGED_CACHE = cache_dir(resolve_base("smollm2-135m"))


@pytest.fixture(scope="module")
def base() -> BaseModel:
    return load_base_model(ModelSettings())


def test_packaged_name_resolves_to_the_shipped_gguf() -> None:
    source = resolve_base("smollm2-135m")
    assert source.packaged and source.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(source.location) / source.gguf_file).is_file()


def test_loads_packaged_model_and_caches_it_as_safetensors(base: BaseModel) -> None:
    assert base.model.config.model_type == "llama"
    params = sum(p.numel() for p in base.model.parameters())
    assert 130e6 < params < 140e6
    assert base.device == "cpu" and not base.model.training
    cached = PACKAGED_CACHE
    assert (cached / "model.safetensors").is_file() and (cached / "supportbot.json").is_file()
    assert base.fingerprint.startswith("sha256:")
    assert base.fingerprint == base_fingerprint(ModelSettings())
    assert base.tokenizer.pad_token_id is not None


def test_local_model_folder_works_and_has_its_own_fingerprint(base: BaseModel) -> None:
    folder = PACKAGED_CACHE
    loaded = load_base_model(ModelSettings(base=str(folder), dtype="bfloat16"))
    assert next(loaded.model.parameters()).dtype.is_floating_point
    assert str(next(loaded.model.parameters()).dtype) == "torch.bfloat16"
    assert loaded.fingerprint == folder_fingerprint(folder) != base.fingerprint


def test_a_local_gguf_file_is_cached_in_its_own_folder(tmp_path: Path) -> None:
    packaged = resolve_base("smollm2-135m")
    copy = tmp_path / "my-model.Q4.gguf"
    shutil.copy(Path(packaged.location) / str(packaged.gguf_file), copy)
    source = resolve_base(str(copy))
    assert not source.packaged and source.gguf_file == copy.name
    folder = cache_dir(source)
    assert folder.parent == PACKAGED_CACHE.parent and folder.name.startswith("my-model.q4-")
    assert folder != PACKAGED_CACHE


def test_a_tokenizer_without_chat_template_gets_chatml_turns(base: BaseModel) -> None:
    tokenizer = base.tokenizer
    kept = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        ensure_chat_template(tokenizer)
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            add_generation_prompt=True, tokenize=False)
        assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
                        "<|im_end|>\n<|im_start|>assistant\n")
        tokenizer.chat_template = "{{ messages[0]['content'] }}"
        ensure_chat_template(tokenizer)  # a template it has is kept
        assert tokenizer.chat_template == "{{ messages[0]['content'] }}"
    finally:
        tokenizer.chat_template = kept


def test_fingerprint_changes_with_config(tmp_path: Path) -> None:
    folder = PACKAGED_CACHE
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(folder / "config.json", copy / "config.json")
    (copy / "model.safetensors").symlink_to(folder / "model.safetensors")
    same = folder_fingerprint(copy)
    assert same == folder_fingerprint(folder)
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-3
    (copy / "config.json").write_text(json.dumps(config))
    assert folder_fingerprint(copy) != same


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "model.gguf"
    with pytest.raises(ModelError, match=str(missing)):
        load_base_model(ModelSettings(base=str(missing)))
    with pytest.raises(ModelError, match="not found"):
        resolve_base(str(tmp_path / "no-such-folder"))


def test_corrupt_model_files_name_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelError, match=str(broken)):
        load_base_model(ModelSettings(base=str(broken)))
    folder = tmp_path / "hf"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_base_model(ModelSettings(base=str(folder)))
    shutil.copy(PACKAGED_CACHE / "config.json", folder / "config.json")
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match=str(folder)):
        load_base_model(ModelSettings(base=str(folder)))


def test_cuda_requested_without_cuda(base: BaseModel) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ModelError, match="CUDA is not available"):
        load_base_model(ModelSettings(device="cuda"))


@pytest.mark.slow
def test_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_CACHE", str(tmp_path))
    first = load_base_model(ModelSettings())
    weights = tmp_path / "smollm2-135m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    again = load_base_model(ModelSettings())
    assert again.fingerprint == first.fingerprint
    assert weights.stat().st_size > 100_000_000
