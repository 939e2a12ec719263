"""Where a bot's LoRA adapter lives and the manifest that ties it to its base model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.config import BotDefinition
from bot.errors import ModelError, NotTrainedError

ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "adapter_checkpoint"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def adapter_dir(bot: BotDefinition) -> Path:
    """The folder ``bot train`` writes the bot's adapter to."""
    return bot.build_dir / ADAPTER_DIR


def checkpoint_dir(bot: BotDefinition) -> Path:
    return bot.build_dir / CHECKPOINT_DIR


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a saved adapter, or None when missing, unreadable or incomplete."""
    try:
        data = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and data.get("format") == FORMAT_VERSION):
        return None
    if not (path / "adapter_config.json").is_file() or not any(
            (path / w).is_file() for w in WEIGHTS):
        return None
    return data


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
