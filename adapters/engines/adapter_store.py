"""A saved LoRA adapter and the manifest that ties it to its base model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.errors import ModelError, NotTrainedError
from retrieval.artifacts import Artifact

FORMAT_VERSION = 1
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def adapter_artifact(path: Path) -> Artifact:
    """A saved adapter: peft's files plus the manifest (complete only with all of them)."""
    return Artifact(path, FORMAT_VERSION, required=("adapter_config.json", WEIGHTS))


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a saved adapter, or None when missing, unreadable or incomplete."""
    return adapter_artifact(path).manifest()


def check_adapter(path: Path, *, base_name: str, base_fingerprint: str) -> dict[str, Any]:
    """The adapter's manifest; refuse a missing adapter or one trained for another base."""
    if not path.is_dir():
        raise NotTrainedError(f"{path}: no LoRA adapter here; run `bot train` first")
    manifest = read_manifest(path)
    if manifest is None:
        raise ModelError(f"{path}: adapter files are incomplete or damaged; "
                         "run `bot train --force`")
    base = manifest.get("base", {})
    if base.get("fingerprint") != base_fingerprint:
        raise ModelError(
            f"{path}: this adapter was trained for base model {base.get('name')!r} "
            f"({base.get('fingerprint')}), but the loaded base is {base_name!r} "
            f"({base_fingerprint}); retrain it with `bot train --force`"
        )
    return manifest
