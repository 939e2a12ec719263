"""The dialogue engines side by side: transformers (float32, in process) vs llama.cpp (default).

Run after `bot train example_bots/acme_bank` (the figures use its LoRA adapter):
    .venv/bin/python -m benchmarks.engine                 # everything, ~25 min on 2 cores
    .venv/bin/python -m benchmarks.engine --skip-train    # without the fresh LoRA training

1. Engine speed: the same prompt token ids (a held-out acme_bank question with its top-3
   passages), greedy, the bot's adapter, 2 threads: first token = a 1-token call, reply =
   a 64-token call (end of text ignored), decode = 63 tokens over the difference; medians of
   ``--runs``, the engines alternating. llama.cpp as the bot runs it (the adapter merged
   into the model, n-gram speculative decoding), at 2 and 1 threads, and with the adapter
   applied at run time (as a server for several bots runs it). Repeated with two busy
   processes on the cores ("contended"). Also llama.cpp's first token for prompts it has not
   seen, after other questions' prompts (``cache_prompt``: the shared system prompt is not
   read again, as in serving).
2. Answer quality: token F1, citation accuracy and declines on the held-out paraphrases
   (bot/evaluation/generation.py), the same adapter on both engines.
3. Throughput through `bot serve`: answers/s and p50/p99 at 1, 8 and 32 users, every turn
   generated (benchmarks/load.py's generation path): "before" = transformers with
   ``model.max_batch`` 8, "after" = the default engine (1 thread on 2 cores), and the
   default engine with ``model.threads: 2``.
4. LoRA training of the adapter from scratch in a subprocess: seconds and peak resident GB.

Writes ``benchmarks/results/engine.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from adapters.engines.answers import GenerationRequest
from adapters.engines.generation import DialogueModel
from adapters.engines.llama_model import LlamaCppDialogueModel
from adapters.settings import ModelSettings
from benchmarks.load import ROOT, Served, level, prepare, questions, wait_ready
from benchmarks.report import write_results
from bot.build import bot_embedder, build_index
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.evaluation.generation import evaluate_generation
from retrieval.embedder import SentenceEmbedder
from retrieval.knowledge import KnowledgeBase

RESULTS = Path(__file__).parent / "results" / "engine.json"
TOKENS = 64
QUESTION = "my debit card never turned up, what now?"
# new prompts for the cached first token: each shares only the system prompt with those before
OTHER_QUESTIONS = ("how long does a transfer abroad take?", "can I get a paper statement?",
                   "what is the fee for a replacement card?", "how do I close my account?",
                   "is there a limit on cash withdrawals?", "can I pay in euros?")


def prompt_request(bot: BotDefinition, embedder: SentenceEmbedder,
                   question: str = QUESTION) -> GenerationRequest:
    index, _ = build_index(bot, embedder)
    hits = KnowledgeBase(index, embedder).search(question, 3)
    return GenerationRequest(question, [h.passage for h in hits], persona=bot.config.persona,
                             adapter=bot.config.name)


def transformers_timer(model: DialogueModel, ids: dict[str, Any], adapter: str) -> Any:
    import torch
    from transformers import GenerationConfig

    def timed(tokens: int) -> float:
        config = GenerationConfig(max_new_tokens=tokens, min_new_tokens=tokens,
                                  do_sample=False, use_cache=True,
                                  pad_token_id=model.base.tokenizer.pad_token_id)
        with model._lock:
            module, selected = model._model_for(adapter)
            with selected, torch.inference_mode():
                started = time.perf_counter()
                module.generate(**ids, generation_config=config)
                return time.perf_counter() - started
    return timed


def llama_call(model: LlamaCppDialogueModel, ids: list[int], adapter: str, tokens: int, *,
               cache: bool = False) -> float:
    """Seconds for one ``/completion`` of ``tokens`` tokens on the engine's server."""
    server = model._server
    assert server is not None
    lora = [{"id": n, "scale": 1.0 if name == adapter else 0.0}
            for name, n in server.lora_ids.items()]
    body = {"prompt": ids, "n_predict": tokens, "temperature": 0, "ignore_eos": True,
            "cache_prompt": cache, "lora": lora}
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/completion",
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        reply = json.load(response)
    assert reply["tokens_predicted"] == tokens, reply.get("tokens_predicted")
    return time.perf_counter() - started


def llama_timer(model: LlamaCppDialogueModel, ids: list[int], adapter: str) -> Any:
    return lambda tokens: llama_call(model, ids, adapter, tokens)


def llama_engine(settings: ModelSettings, threads: int, adapter: Path,
                 names: list[str]) -> LlamaCppDialogueModel:
    """A started llama.cpp engine with the adapter in ``adapter`` under each of ``names``."""
    model = LlamaCppDialogueModel(dataclasses.replace(settings, threads=threads, max_batch=1))
    for name in names:
        model.add_adapter(name, adapter)
    return model.load()


def cached_first_token(model: LlamaCppDialogueModel, prompts: list[list[int]],
                       adapter: str) -> float:
    """Median first token of ``prompts`` (new to the server, after the first), asked in
    turn with ``cache_prompt``: only the shared system prompt is reused."""
    samples = [llama_call(model, ids, adapter, 1, cache=True) for ids in prompts]
    return round(statistics.median(samples[1:]), 3)


def speed(timers: dict[str, Any], runs: int) -> dict[str, dict[str, float]]:
    """Medians of first token, whole reply and decode rate per engine, alternating."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in timers}
    for run in range(runs + 1):
        for name, timed in timers.items():
            first, reply = timed(1), timed(TOKENS)
            if run:  # the first round warms up
                samples[name].append((first, reply))
    out: dict[str, dict[str, float]] = {}
    for name, pairs in samples.items():
        first = statistics.median(p[0] for p in pairs)
        reply = statistics.median(p[1] for p in pairs)
        decode = statistics.median((TOKENS - 1) / max(1e-6, p[1] - p[0]) for p in pairs)
        out[name] = {"first_token_s": round(first, 3), "reply_s": round(reply, 3),
                     "decode_tokens_per_s": round(decode, 1)}
    return out


class Busy:
    """Busy processes on the cores: the "other jobs share the machine" case."""

    def __init__(self, count: int) -> None:
        self.processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                          for _ in range(count)]

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


async def throughput(bot_dir: Path, users: list[int], requests: int,
                     timeout: float) -> dict[str, Any]:
    """answers/s and p50/p99 through `bot serve`, transformers b8 vs the default engine."""
    texts = questions(bot_dir)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="supportbot-engine-") as tmp:
        work = Path(tmp)
        series = {"before": prepare(bot_dir, work, store="sqlite", path="generation",
                                    redis_url="", max_batch=8, engine="transformers"),
                  "after": prepare(bot_dir, work, store="sqlite", path="generation",
                                   redis_url=""),
                  "after_2_threads": prepare(bot_dir, work, store="sqlite", path="generation",
                                             redis_url="", threads=2)}
        http_timeout = aiohttp.ClientTimeout(total=timeout)
        for name, folder in series.items():  # one server at a time: each gets the cores
            served = Served(folder, "sqlite")
            try:
                async with aiohttp.ClientSession(timeout=http_timeout) as http:
                    await wait_ready(http, served.url, served.process)
                    await level(http, [served.url], users=2, total=4, texts=texts,
                                tag=f"{name}-warm", seed=0)
                    for count in users:
                        result = await level(http, [served.url], users=count,
                                             total=max(requests, count), texts=texts,
                                             tag=f"{name}-{count}", seed=count)
                        rows.setdefault(name, {})[str(count)] = result
                        print(f"{name:>6} {count:>3} users: {result['turns_per_s']} answers/s "
                              f"p50 {result['p50_ms']} ms errors {result['errors'] or 0}",
                              flush=True)
            finally:
                served.stop()
    return rows


def train_fresh(bot_dir: Path) -> dict[str, float]:
    """Train the bot's adapter from scratch in a subprocess, on a copy of the bot (its
    served version stays as it is); seconds and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="supportbot-train-") as tmp:
        copy = Path(tmp) / bot_dir.name
        shutil.copytree(bot_dir, copy, ignore=shutil.ignore_patterns(
            ".bot", "conversations", "suggestions"))
        return train_in_subprocess(copy)


def train_in_subprocess(bot_dir: Path) -> dict[str, float]:
    """Train the adapter of the bot in ``bot_dir`` from scratch in a subprocess (it writes
    into that folder); seconds and the subprocess's peak RSS."""
    code = ("import sys; from bot.definition.loader import load_bot; "
            "from bot.build import build_index, train_adapter; "
            "from bot.build import bot_embedder; "
            "bot = load_bot(sys.argv[1]); e = bot_embedder(bot); "
            "index, _ = build_index(bot, e); train_adapter(bot, index, e, force=True)")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, str(bot_dir)], cwd=ROOT,
                               env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not all children's
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"training {bot_dir} failed with exit code {process.returncode}")
    peak = usage.ru_maxrss / 1024 / 1024
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_gb": round(peak, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--eval-limit", type=int, default=24)
    parser.add_argument("--users", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=24, help="answers per level")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `bot` sets it for torch
    bot = load_bot(args.bot)
    load_start = os.getloadavg()
    embedder = bot_embedder(bot).load()
    request = prompt_request(bot, embedder)
    settings = bot.config.model
    torch_model = DialogueModel(dataclasses.replace(settings, engine="transformers",
                                                    threads=2, max_batch=1)).load()
    torch_model.add_adapter(bot.config.name, bot.adapter_dir)
    ids = torch_model.prompt_ids(request)
    others = [torch_model.prompt_ids(prompt_request(bot, embedder, q))["input_ids"][0].tolist()
              for q in OTHER_QUESTIONS]
    # name -> (threads, adapters): the bot's engine, and a server for several bots (the
    # same adapter twice, so LoRA is applied at run time instead of merged)
    variants = {"llama_cpp": (2, 1), "llama_cpp_1_thread": (1, 1), "llama_cpp_runtime_lora": (2, 2)}
    llama = {name: llama_engine(settings, threads, bot.adapter_dir, [bot.config.name, "other"][:n])
             for name, (threads, n) in variants.items()}
    token_ids = ids["input_ids"][0].tolist()
    timers = {"transformers": transformers_timer(torch_model, ids, bot.config.name),
              **{name: llama_timer(model, token_ids, bot.config.name)
                 for name, model in llama.items()}}
    quiet = speed(timers, args.runs)
    quiet["llama_cpp"]["first_token_s_system_prompt_cached"] = cached_first_token(
        llama["llama_cpp"], others, bot.config.name)
    print(json.dumps(quiet, indent=2), flush=True)
    busy = Busy(2)
    try:
        contended = speed(timers, max(2, args.runs // 2))
    finally:
        busy.stop()
    print("contended", json.dumps(contended, indent=2), flush=True)
    quality = {"transformers": evaluate_generation(bot, adapter=True, model=torch_model,
                                                   limit=args.eval_limit, embedder=embedder),
               "llama_cpp": evaluate_generation(bot, adapter=True, model=llama["llama_cpp"],
                                                limit=args.eval_limit, embedder=embedder)}
    for model in llama.values():
        model.close()
    del torch_model
    served = asyncio.run(throughput(args.bot.resolve(), args.users, args.requests,
                                    args.timeout))
    training = None if args.skip_train else train_fresh(args.bot)
    results: dict[str, Any] = {
        "decode_tokens_per_s": {k: quiet[k]["decode_tokens_per_s"]
                                for k in ("transformers", "llama_cpp")},
        "first_token_s": {k: quiet[k]["first_token_s"] for k in ("transformers", "llama_cpp")},
        "reply_s": {k: quiet[k]["reply_s"] for k in ("transformers", "llama_cpp")},
        "answers_per_s_8_users": {k: served[k]["8"]["turns_per_s"] for k in ("before", "after")}
        if all("8" in served.get(k, {}) for k in ("before", "after")) else None,
        "lora_train": training,
        "answer_f1": {k: v["answer_f1"] for k, v in quality.items()},
        "ratios": {
            "decode": round(quiet["llama_cpp"]["decode_tokens_per_s"]
                            / quiet["transformers"]["decode_tokens_per_s"], 2),
            "first_token": round(quiet["llama_cpp"]["first_token_s"]
                                 / quiet["transformers"]["first_token_s"], 3),
            "reply": round(quiet["llama_cpp"]["reply_s"] / quiet["transformers"]["reply_s"], 3),
        },
        "speed_quiet": quiet,
        "speed_contended_2_busy_processes": contended,
        "quality": {k: {m: v[m] for m in ("questions", "answer_f1", "citation_accuracy",
                                          "declined", "tokens_per_second", "seconds")}
                    for k, v in quality.items()},
        "served": served,
        "engines": {
            "transformers": {"threads": 2, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
                             "dtype": settings.dtype},
            "llama_cpp": {"threads": "2 (and 1)", "poll": 50, "gguf_type": settings.gguf_type,
                          "model": "the adapter merged in; weights repacked for the CPU",
                          "speculative": "ngram-simple",
                          "openmp": "llama.cpp's own OpenMP build, OMP_* unset for it"},
        },
        "prompt_tokens": len(token_ids),
        "command": "python -m benchmarks.engine " + " ".join(argv or sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_average": load_start},
    }
    if results["answers_per_s_8_users"]:
        before, after = (results["answers_per_s_8_users"][k] for k in ("before", "after"))
        results["ratios"]["answers_per_s_8_users"] = round(after / before, 2) if before else None
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
