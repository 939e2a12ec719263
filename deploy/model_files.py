"""Link the files a model server serves for a trained bot to fixed paths.

`python deploy/model_files.py BOT_DIR FOLDER` makes ``FOLDER/base.gguf`` (the base model as
llama.cpp runs it, ``model.gguf_type``), ``FOLDER/adapter.gguf`` (the served version's LoRA
adapter for llama.cpp) and ``FOLDER/adapter`` (the same adapter as peft saved it, for vLLM)
point at the files `bot train` wrote, wherever their cache keys and version numbers put them. The
Dockerfile runs it after `bot train`; deploy/compose.yaml and deploy/k8s/model.yaml start
the model server (deploy/model_server.sh: llama-server) with these two paths. A bot with
``model.generation`` off quotes its passages and has no adapter: only ``base.gguf`` is linked,
and the model server holds the base model alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adapters.engines.llama_model import ADAPTER_GGUF, engine_base_file
from bot.definition.loader import load_bot


def link_model_files(bot_dir: str, folder: Path) -> dict[Path, Path]:
    """Link ``base.gguf`` and, for a bot that generates, ``adapter.gguf`` (and ``adapter``)
    in ``folder``; returns link -> file."""
    bot = load_bot(bot_dir)
    files = {"base.gguf": engine_base_file(bot.config.model)}
    if bot.config.model.generation:
        files |= {"adapter.gguf": bot.adapter_dir / ADAPTER_GGUF, "adapter": bot.adapter_dir}
    else:
        print(f"{bot_dir}: model.generation is off: no adapter, the base model alone")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in {"adapter.gguf", "adapter"} - set(files):  # left by an earlier, generating bot
        (folder / stale).unlink(missing_ok=True)
    for name, path in files.items():
        if not path.exists():
            raise SystemExit(f"error: {path}: not found; run `bot train {bot_dir}` first")
        link = folder / name
        link.unlink(missing_ok=True)
        link.symlink_to(path.resolve())
    return {folder / name: path.resolve() for name, path in files.items()}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python deploy/model_files.py BOT_DIR FOLDER")
    for link, target in link_model_files(sys.argv[1], Path(sys.argv[2])).items():
        print(f"{link} -> {target}")
