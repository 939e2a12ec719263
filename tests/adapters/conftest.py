"""Shared fixtures for the dialogue model tests: two random LoRA adapters for the packaged base."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.engines.adapter_store import FORMAT_VERSION
from adapters.engines.base_model import load_base_model
from adapters.training.lora_training import save_adapter
from bot.definition.config import ModelSettings


@pytest.fixture(scope="session")
def random_adapters(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two random (untrained) LoRA adapters with manifests for this base: they change outputs."""
    import torch
    from peft import LoraConfig, get_peft_model

    base = load_base_model(ModelSettings())  # its own copy: peft modifies the model it wraps
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                            init_lora_weights=False, task_type="CAUSAL_LM")
        wrapped = get_peft_model(base.model, config)
        path = tmp_path_factory.mktemp("adapters") / f"adapter-{seed}"
        save_adapter(wrapped, path, {
            "format": FORMAT_VERSION, "bot": f"bot{seed}",
            "base": {"name": "smollm2-135m", "fingerprint": base.fingerprint},
            "fingerprint": {},
        })
        base.model = wrapped.unload()
        paths.append(path)
    return paths
