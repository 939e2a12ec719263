"""Benchmark dynamic batching of the dialogue model: concurrent users, max_batch side by side.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.generation_batching
        [--bot example_bots/acme_bank] [--users 1,8,32] [--batches 1,8,16]
        [--requests 4,16,32] [--tokens 48] [--wait-ms 10]

Each simulated user sends its next question when the answer to the last one arrived
(``DialogueModel.agenerate``, closed loop). Questions are the bot's held-out paraphrases
(``eval/faq_paraphrases.yaml``) with their top-3 retrieved passages (retrieval is done
beforehand and not timed); every ``max_batch`` setting answers the same requests at each
user level, levels and settings interleaved. Then one batched ``generate`` per batch size
is split into prefill time and decode time per step. Writes
``benchmarks/results/generation_batching.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from adapters.engines.batching import left_pad
from adapters.engines.generation import DialogueModel, GeneratedAnswer, GenerationRequest
from benchmarks.report import torch_machine, write_results
from bot.build import bot_embedder, build_index
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.evaluation.generation import load_paraphrases
from retrieval.knowledge import KnowledgeBase

RESULTS = Path(__file__).parent / "results" / "generation_batching.json"


def build_requests(bot: BotDefinition, *, top_k: int, tokens: int) -> list[GenerationRequest]:
    """One request per held-out question, with its top-``top_k`` passages."""
    embedder = bot_embedder(bot).load()
    knowledge = KnowledgeBase(build_index(bot, embedder)[0], embedder)
    return [GenerationRequest(question, [hit.passage for hit in knowledge.search(question, top_k)],
                              persona=bot.config.persona, max_new_tokens=tokens)
            for _, question in load_paraphrases(bot)]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def run_level(model: DialogueModel, requests: list[GenerationRequest],
                    users: int) -> tuple[dict[str, Any], list[GeneratedAnswer]]:
    """``users`` closed-loop users answering ``requests`` between them."""
    answers: list[GeneratedAnswer | None] = [None] * len(requests)
    latencies: list[float] = []
    pending = iter(range(len(requests)))

    async def user() -> None:
        for n in pending:
            started = time.perf_counter()
            answers[n] = await model.agenerate(requests[n])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(users)))
    wall = time.perf_counter() - started
    done = [a for a in answers if a is not None]
    tokens = sum(a.tokens for a in done)
    return {
        "users": users, "max_batch": model.settings.max_batch, "requests": len(done),
        "wall_s": round(wall, 2), "requests_per_s": round(len(done) / wall, 3),
        "tokens_per_s": round(tokens / wall, 2), "new_tokens": tokens,
        "p50_s": round(statistics.median(latencies), 2),
        "p99_s": round(percentile(latencies, 0.99), 2),
        "mean_batch": round(statistics.mean(a.batch_size for a in done), 2),
    }, done


def phases(model: DialogueModel, requests: list[GenerationRequest], sizes: list[int], *,
           steps: int) -> list[dict[str, Any]]:
    """Prefill time and per-step decode time of one batched ``generate``, by batch size."""
    import torch
    from transformers import GenerationConfig

    pad = model.base.tokenizer.pad_token_id
    rows = []
    for size in sizes:
        prompts = [model.prompt_ids(r)["input_ids"][0].tolist() for r in requests[:size]]
        input_ids, mask = left_pad(prompts, pad)
        times = []
        for new in (1, steps + 1):
            config = GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                      pad_token_id=pad)
            with torch.inference_mode():
                started = time.perf_counter()
                model.base.model.generate(input_ids=input_ids, attention_mask=mask,
                                          generation_config=config)
                times.append(time.perf_counter() - started)
        prefill, step = times[0], (times[1] - times[0]) / steps
        rows.append({"batch": size, "prompt_tokens": sum(map(len, prompts)),
                     "padded_tokens": int(input_ids.numel()), "prefill_s": round(prefill, 2),
                     "prefill_tokens_per_s": round(sum(map(len, prompts)) / prefill, 1),
                     "decode_step_s": round(step, 3),
                     "decode_tokens_per_s": round(size / step, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot", default="example_bots/acme_bank")
    parser.add_argument("--users", default="1,8,32", help="concurrent users per level")
    parser.add_argument("--batches", default="1,8,16", help="max_batch settings to compare")
    parser.add_argument("--requests", default="4,16,32", help="requests per user level")
    parser.add_argument("--tokens", type=int, default=48, help="max_new_tokens per answer")
    parser.add_argument("--wait-ms", type=float, default=10.0, help="model.batch_wait_ms")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--phase-steps", type=int, default=16,
                        help="decode steps timed per batch size in the prefill/decode split "
                             "(0: skip it)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import dataclasses


    levels = [int(n) for n in args.users.split(",")]
    counts = [int(n) for n in args.requests.split(",")]
    if len(counts) != len(levels):
        parser.error("--requests needs one count per --users level")
    load_start = os.getloadavg()
    bot = load_bot(args.bot)
    requests = build_requests(bot, top_k=args.top_k, tokens=args.tokens)
    models = {size: DialogueModel(dataclasses.replace(
        bot.config.model, max_batch=size, batch_wait_ms=args.wait_ms)).load()
        for size in (int(n) for n in args.batches.split(","))}
    for model in models.values():  # warm up (first calls allocate and tune kernels)
        model.generate(requests[-1])
    serial = min(models)
    rows: list[dict[str, Any]] = []
    offset = 0
    for users, count in zip(levels, counts, strict=True):
        chosen = [requests[(offset + i) % len(requests)] for i in range(count)]
        offset += count
        texts: dict[int, list[str]] = {}
        for size, model in models.items():
            row, answers = asyncio.run(run_level(model, chosen, users))
            texts[size] = [a.text for a in answers]
            rows.append(row)
            print(json.dumps(row), flush=True)
        base = next(r for r in rows if r["users"] == users and r["max_batch"] == serial)
        for row in rows[-len(models):]:
            row["speedup"] = round(row["requests_per_s"] / base["requests_per_s"], 2)
            row["same_text_as_serial"] = round(statistics.mean(
                a == b for a, b in zip(texts[row["max_batch"]], texts[serial], strict=True)), 3)
    sizes = sorted({1, *models})
    split = phases(models[max(models)], requests, sizes, steps=args.phase_steps) \
        if args.phase_steps else []
    results = {
        "machine": {**torch_machine(), "load_average": load_start},
        "model": {"base": bot.config.model.base, "dtype": bot.config.model.dtype,
                  "device": bot.config.model.device, "adapter": None},
        "settings": {"max_new_tokens": args.tokens, "batch_wait_ms": args.wait_ms,
                     "top_k": args.top_k, "questions": len(requests)},
        "levels": rows,
        "phases": split,
    }
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
