"""Benchmark the dialogue model on CPU: decoding speed, LoRA step time, base vs LoRA quality.

    python -m benchmarks.generation [--bot example_bots/acme_bank] [--runs 5] [--tokens 64]
        [--train-steps 3] [--eval-limit 40] [--skip-train] [--skip-eval]

Writes ``benchmarks/results/generation.json``. The eval part needs the bot's adapter
(``bot train``); without it only the base model is evaluated. With it, the LoRA answers are
also scored with every relevant passage in the prompt (``model.passage_margin`` off). Set
``OMP_WAIT_POLICY=PASSIVE`` on machines whose cores are shared with other busy processes
(see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.engines.adapter_store import read_manifest
from adapters.engines.generation import DialogueModel, GenerationRequest
from adapters.training.training_data import build_examples
from benchmarks.report import torch_machine, write_results
from bot.build import bot_embedder, build_index, example_options, train_adapter
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.evaluation.generation import evaluate_generation
from retrieval.embedder import SentenceEmbedder
from retrieval.knowledge import KnowledgeBase

RESULTS = Path(__file__).parent / "results" / "generation.json"


def decoding(model: DialogueModel, bot: BotDefinition, embedder: SentenceEmbedder, *,
             runs: int, tokens: int) -> dict[str, Any]:
    """Greedy decoding of exactly ``tokens`` tokens (EOS ignored) on a real FAQ prompt."""
    import torch
    from transformers import GenerationConfig

    index, _ = build_index(bot, embedder)
    question = "my debit card never turned up, what now?"
    faq = bot.config.faq
    hits = KnowledgeBase(index, embedder).search(question, faq.top_k if faq else 3)
    request = GenerationRequest(question, [h.passage for h in hits], persona=bot.config.persona)
    inputs = model.prompt_ids(request)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    config = GenerationConfig(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                              use_cache=True, pad_token_id=model.base.tokenizer.pad_token_id)
    totals, firsts = [], []
    for run in range(runs + 1):  # the first run warms up and is not counted
        with torch.inference_mode():
            started = time.perf_counter()
            model.base.model.generate(**inputs, generation_config=GenerationConfig(
                max_new_tokens=1, do_sample=False, pad_token_id=config.pad_token_id))
            first = time.perf_counter() - started
            started = time.perf_counter()
            model.base.model.generate(**inputs, generation_config=config)
            total = time.perf_counter() - started
        if run:
            firsts.append(first)
            totals.append(total)
    median_total = statistics.median(totals)
    return {
        "prompt_tokens": prompt_tokens, "new_tokens": tokens, "runs": runs,
        "first_token_latency_s": round(statistics.median(firsts), 3),
        "total_s": round(median_total, 3),
        "tokens_per_s": round(tokens / median_total, 2),
        "decode_tokens_per_s": round((tokens - 1) / (median_total - statistics.median(firsts)),
                                     2),
    }


def training(bot: BotDefinition, embedder: SentenceEmbedder, *, steps: int) -> dict[str, Any]:
    """Seconds per LoRA step on the bot's data (a copy of the bot, so nothing is overwritten)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / bot.root.name
        shutil.copytree(bot.root, copy, ignore=shutil.ignore_patterns(".bot"))
        clone = load_bot(copy)
        index, _ = build_index(clone, embedder)
        examples = len(build_examples(index, embedder, **example_options(clone),
                                      seed=clone.config.model.lora.seed))
        marks: list[float] = []
        started = time.perf_counter()
        train_adapter(clone, index, embedder, progress=False, max_steps=steps + 1,
                      on_step=lambda step, loss: marks.append(time.perf_counter()))
        total = time.perf_counter() - started
    per_step = statistics.median(b - a for a, b in itertools.pairwise(marks))
    lora = bot.config.model.lora
    per_epoch = math.ceil(examples / lora.batch_size)
    planned = lora.max_steps or math.ceil(lora.epochs * per_epoch)
    return {
        "examples": examples, "batch_size": lora.batch_size, "max_length": lora.max_length,
        "r": lora.r, "target_modules": list(lora.target_modules),
        "seconds_per_step": round(per_step, 2), "steps_per_epoch": per_epoch,
        "epoch_estimate_min": round(per_step * per_epoch / 60, 1),
        "default_run_steps": planned,
        "default_run_estimate_min": round(per_step * planned / 60, 1),
        "measured_steps": steps, "wall_s_including_load": round(total, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot", default="example_bots/acme_bank")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--eval-limit", type=int, default=40)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    bot = load_bot(args.bot)
    embedder = bot_embedder(bot).load()
    model = DialogueModel(bot.config.model).load()
    results: dict[str, Any] = {
        "machine": torch_machine(),
        "model": {"base": bot.config.model.base, "dtype": bot.config.model.dtype,
                  "device": bot.config.model.device},
        "decoding": decoding(model, bot, embedder, runs=args.runs, tokens=args.tokens),
    }
    print(json.dumps(results["decoding"], indent=2), flush=True)
    if not args.skip_train:
        results["lora_training"] = training(bot, embedder, steps=args.train_steps)
        print(json.dumps(results["lora_training"], indent=2), flush=True)
    if not args.skip_eval:
        evals = {"base": evaluate_generation(bot, adapter=False, limit=args.eval_limit,
                                             model=model, embedder=embedder)}
        manifest = read_manifest(bot.adapter_dir)
        if manifest is not None:
            evals["lora"] = evaluate_generation(bot, adapter=True, limit=args.eval_limit,
                                                model=model, embedder=embedder)
            evals["lora"]["adapter"] = {k: manifest.get(k) for k in (
                "steps", "epochs", "examples", "seconds", "seconds_per_step", "final_loss")}
            every = replace(bot, config=replace(bot.config, model=replace(
                bot.config.model, passage_margin=None)))  # every relevant passage in prompt
            evals["lora_all_relevant"] = evaluate_generation(
                every, adapter=True, limit=args.eval_limit, model=model, embedder=embedder)
        for result in evals.values():
            result["samples"] = result.pop("items")[:5]
        results["eval"] = evals
        print(json.dumps(evals, indent=2), flush=True)
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
