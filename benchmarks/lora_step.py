"""Benchmark one LoRA training step: the model's own loss vs the answer-only loss.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.lora_step [--bot example_bots/acme_bank]
        [--steps 3] [--rounds 2]

``model(**batch).loss`` computes logits (hidden size x a 49k vocabulary) at every position
of every row; :func:`adapters.training.lora_training.answer_loss` computes them only at the answer
tokens. Each variant runs in its own process (so its peak memory is its own), alternating,
``--rounds`` times, on the bot's real training batches (batch size and LoRA settings from
bot.yaml, dropout off so both variants compute the same numbers); the first step warms up.
Reports seconds per step, peak resident memory and each step's loss (the two must agree).
Writes ``benchmarks/results/lora_step.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.build import example_options

RESULTS = Path(__file__).parent / "results" / "lora_step.json"
VARIANTS = ("model_loss", "answer_loss")


def run_variant(bot_dir: str, variant: str, steps: int) -> dict[str, Any]:
    """``steps`` + 1 training steps with ``variant``'s loss, in this process."""
    import torch
    from peft import LoraConfig, get_peft_model

    from adapters.engines.base_model import load_base_model
    from adapters.training.lora_training import _batch, _batch_rows, answer_loss
    from adapters.training.training_data import build_examples, encode
    from bot.build import bot_embedder, build_index
    from bot.definition.loader import load_bot

    bot = load_bot(bot_dir)
    settings, lora = bot.config.model, bot.config.model.lora
    embedder = bot_embedder(bot).load()
    index, _ = build_index(bot, embedder)
    base = load_base_model(settings)
    rows = [encode(e, base.tokenizer, bot.config.persona, max_length=lora.max_length,
                   max_words=settings.passage_words)
            for e in build_examples(index, embedder, **example_options(bot), seed=lora.seed)]
    data = [r for r in rows if r is not None]
    torch.manual_seed(lora.seed)
    model = get_peft_model(base.model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=0.0,
        target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lora.learning_rate)
    model.train()
    seconds, losses, tokens = [], [], []
    for step in range(steps + 1):
        rows = _batch_rows(step, [len(r[0]) for r in data], lora.batch_size, lora.seed)
        batch = _batch([data[i] for i in rows], base.tokenizer.pad_token_id)
        started = time.perf_counter()
        loss = model(**batch).loss if variant == "model_loss" else answer_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # step 0 warms up
            seconds.append(time.perf_counter() - started)
        losses.append(round(float(loss), 5))
        tokens.append([int(batch["attention_mask"].sum()),
                       int((batch["labels"] != -100).sum())])
    return {"variant": variant, "seconds_per_step": round(statistics.median(seconds), 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "losses": losses, "tokens_and_answer_tokens": tokens,
            "batch_size": lora.batch_size, "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot", default="example_bots/acme_bank")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one child
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.bot, args.variant, args.steps)), flush=True)
        return 0
    from benchmarks.report import torch_machine, write_results

    machine = torch_machine()
    runs: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for variant in VARIANTS:
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.lora_step", "--bot", args.bot,
                 "--steps", str(args.steps), "--variant", variant],
                check=True, capture_output=True, text=True)
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in mine),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in mine)}
    model, answer = summary["model_loss"], summary["answer_loss"]
    summary["ratios"] = {
        "time_answer_over_model": round(answer["seconds_per_step"] / model["seconds_per_step"],
                                        3),
        "memory_answer_over_model": round(answer["peak_rss_mb"] / model["peak_rss_mb"], 3),
        "largest_loss_difference": max(abs(a - b) for a, b in zip(
            runs[0]["losses"], runs[1]["losses"], strict=True)),
    }
    write_results(args.output, {"machine": machine, "bot": args.bot,
                                "steps": args.steps, "rounds": args.rounds,
                                "summary": summary, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
