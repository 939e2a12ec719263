"""Answer trust: answered right / answered wrong / abstained on questions the bot never saw.

Run: .venv/bin/python -m benchmarks.answers     (writes benchmarks/results/answers.json;
     ``--only stackfaq stackfaq_plain`` runs those parts, the others keep their figures)

1. acme_bank, the whole bot (its trained models, the full turn pipeline, generation off so
   the figures measure the decision, not the dialogue model), on its held-out paraphrases
   (eval/faq_paraphrases.yaml) and the customer questions written before reading its FAQ
   (eval/customer_questions_blind.yaml, labelled afterwards); neither set is trained on.
   A turn is right when its citations (or the intent that answered) are the expected
   entries, wrong when it answers with anything else or answers a question the FAQ does
   not cover, abstained when it says it does not know or asks which of two was meant.
   ``follow_ups``: the same bot on its 40 two-turn conversations (eval/follow_ups_blind.yaml).
2. StackFAQ (../shared/data/stackfaq): 100 threads become a bot's FAQ, each with its
   question and first 3 user paraphrases as ``alternatives``; the other paraphrases are
   asked. The remaining 25 threads are left out of the FAQ: their paraphrases are questions
   the bot must not answer. ``stackfaq_plain``: the same bot with every ``alternatives``
   removed (a plain FAQ, as most teams write one), asked the same questions.
3. Variants, each trained and asked in this run: ``threshold`` (the cosine threshold, stock
   MiniLM), ``learned`` (the default: the learned decision, MiniLM tuned on the bot's FAQ)
   and ``mpnet`` (the learned decision on all-mpnet-base-v2, stock: tuning it per bot takes
   too long on a CPU). answers.json holds the default's figures; answers_details.json every
   variant's, per question.
4. ``faq_turn_p50_ms`` and ``worker_rss_mb``: "before" MiniLM (the default), "after" the
   stronger retriever (mpnet): p50 of a FAQ turn over 60 acme_bank questions, the variants
   alternating question by question; resident memory of a fresh process that loaded the
   bot and answered two turns.
5. ``generated``: read from results/grounding.json (benchmarks/grounding.py, which needs the
   bot trained with generation on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.faq_retrieval import DATA as STACKFAQ
from benchmarks.faq_retrieval import load_threads
from bot.build import bot_embedder, build_index, train
from bot.definition.loader import load_bot
from bot.evaluation.answers import NONE, AnswerCase, load_answer_cases, score_cases
from bot.runtime import BotRuntime
from bot.server.pipeline import TurnPipeline
from foundation.messages import UserMessage

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "answers.json"
DETAILS = Path(__file__).parent / "results" / "answers_details.json"
ACME = ROOT / "example_bots" / "acme_bank"
STACKFAQ_COVERED, STACKFAQ_ALTERNATIVES = 100, 3
GROUNDING = Path(__file__).parent / "results" / "grounding.json"
# variant: (answers.policy, embedder.tuning_rounds, embedder.model; None: the bot's default)
MPNET = "all-mpnet-base-v2"
VARIANTS: dict[str, tuple[str, int | None, str | None]] = {
    "threshold": ("threshold", 0, None), "learned": ("learned", None, None),
    "mpnet": ("learned", 0, MPNET)}
DEFAULT, STRONGER = "learned", "mpnet"  # the bot's default; the stronger retriever
PARTS = ("acme_bank", "stackfaq", "stackfaq_plain")  # "latency": only the embedders' cost
KEYS = ("acme_bank", "stackfaq", "stackfaq_plain", "follow_ups", "generated",
        "faq_turn_p50_ms", "worker_rss_mb")


def copy_bot(source: Path, target: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """A copy of a bot folder (without its build) with some bot.yaml sections updated."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".bot"))
    config = yaml.safe_load((target / "bot.yaml").read_text(encoding="utf-8"))
    for section, values in overrides.items():
        config[section] = {**(config.get(section) or {}), **values}
    (target / "bot.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target


def acme_cases() -> list[AnswerCase]:
    """acme_bank's held-out paraphrases and its blind customer questions."""
    return [*load_answer_cases(ACME / "eval" / "faq_paraphrases.yaml"),
            *load_answer_cases(ACME / "eval" / "customer_questions_blind.yaml")]


def faq_turn_p50(runtimes: dict[str, BotRuntime], questions: list[str],
                 repeat: int) -> dict[str, float]:
    """p50 ms of a FAQ turn for each runtime, the runtimes alternating question by question."""
    async def run() -> dict[str, float]:
        pipelines = {k: TurnPipeline(r) for k, r in runtimes.items()}
        seconds: dict[str, list[float]] = {k: [] for k in runtimes}
        for round_ in range(repeat):
            for n, question in enumerate(questions):
                for name, pipeline in pipelines.items():
                    _forget_vectors(runtimes[name])  # every turn embeds its message
                    started = time.perf_counter()
                    await pipeline.handle(UserMessage(sender=f"p50-{round_}-{n}",
                                                      text=question, channel="rest"))
                    seconds[name].append(time.perf_counter() - started)
        return {k: round(statistics.median(v) * 1000, 2) for k, v in seconds.items()}
    return asyncio.run(run())


def _forget_vectors(runtime: BotRuntime) -> None:
    """Clear the runtime's cached query vectors, so a repeated question is timed in full."""
    clear = getattr(getattr(runtime.knowledge, "embedder", None), "clear_cache", None)
    if callable(clear):
        clear()


def stackfaq_bot(folder: Path, seed: int = 0, *,
                 alternatives: bool = True) -> list[AnswerCase]:
    """Write the StackFAQ bot into ``folder`` (``alternatives``: False, a plain FAQ of
    question and answer only); returns the questions to ask it (the same either way)."""
    threads = load_threads(STACKFAQ)
    random.Random(seed).shuffle(threads)
    folder.mkdir(parents=True)
    (folder / "faq").mkdir()
    cases: list[AnswerCase] = []
    with (folder / "faq" / "threads.jsonl").open("w", encoding="utf-8") as out:
        for n, thread in enumerate(threads):
            paraphrases = list(thread["rephrasings"])  # type: ignore[call-overload]
            if n < STACKFAQ_COVERED:
                entry = {"id": thread["id"], "question": thread["question"],
                         "answer": thread["answer"]}
                if alternatives:
                    entry["alternatives"] = paraphrases[:STACKFAQ_ALTERNATIVES]
                out.write(json.dumps(entry) + "\n")
                asked, expect = paraphrases[STACKFAQ_ALTERNATIVES:], str(thread["id"])
            else:
                asked, expect = paraphrases, "none"
            cases += [AnswerCase(f"{thread['id']}-{i}", (q,), ((expect,),))
                      for i, q in enumerate(asked)]
    (folder / "bot.yaml").write_text(
        "name: stackfaq\nfaq:\n  sources: [faq/]\nchannels:\n  rest: {auth: none}\n")
    return cases


def trained(bot_dir: Path, said: dict[str, str] | None = None) -> BotRuntime:
    """The bot trained and loaded; ``said``: filled with what `bot train` said of each step."""
    bot = load_bot(bot_dir)
    for step in train(bot, progress=False):
        if said is not None:
            said[step.step] = step.detail
    return BotRuntime.load(bot)


def brief(scored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scored.items() if not isinstance(v, dict | list)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=(*PARTS, "latency"), nargs="+", default=list(PARTS),
                        help="the parts to run (the others keep their figures in the file)")
    parser.add_argument("--repeat", type=int, default=3, help="latency rounds")
    args = parser.parse_args()
    machine: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "acme_bank" in args.only:
            results.update(acme_part(work, details, args.repeat))
        elif "latency" in args.only:
            results.update(latency_part(work, details, args.repeat))
        if "stackfaq_plain" in args.only:
            results["stackfaq_plain"] = stackfaq_part(work, details, "stackfaq_plain",
                                                      VARIANTS, alternatives=False)
        if "stackfaq" in args.only:
            results["stackfaq"] = stackfaq_part(work, details, "stackfaq", VARIANTS,
                                                alternatives=True)
    results["generated"] = generated_figures(details)
    machine["load_average_end"] = os.getloadavg()
    details[f"machine_{'_'.join(args.only)}"] = machine
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept_details = json.loads(DETAILS.read_text()) if DETAILS.exists() else {}
    results = {key: {**kept, **results}[key] for key in KEYS if key in {**kept, **results}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    DETAILS.write_text(json.dumps({**kept_details, **details}, indent=1) + "\n")
    print(json.dumps(results, indent=2))


def acme_part(work: Path, details: dict[str, Any], repeat: int) -> dict[str, Any]:
    """acme_bank in every variant; its follow-ups; FAQ-turn p50 and a worker's memory with
    each embedder."""
    cases = acme_cases()
    runtimes, folders = {}, {}
    for variant, (policy, rounds, model) in VARIANTS.items():
        folders[variant] = copy_bot(ACME, work / f"acme-{variant}", {
            "answers": {"policy": policy}, "model": {"generation": False},
            "embedder": {k: v for k, v in (("tuning_rounds", rounds), ("model", model))
                         if v is not None}})
        runtimes[variant] = trained(folders[variant])
        details[f"acme_bank_{variant}"] = score_cases(runtimes[variant], cases)
        details[f"follow_ups_{variant}"] = score_cases(runtimes[variant], follow_up_cases())
        print("acme_bank", variant, brief(details[f"acme_bank_{variant}"]),
              "follow-ups", brief(details[f"follow_ups_{variant}"]), flush=True)
    questions = [c.turns[-1] for c in cases if c.note == "paraphrase"][:60]
    p50 = faq_turn_p50(runtimes, questions, repeat)
    details["faq_turn_p50_ms_by_variant"] = p50
    for runtime in runtimes.values():
        asyncio.run(runtime.close())
    rss = {variant: worker_rss_mb(folders[variant]) for variant in (DEFAULT, STRONGER)}
    details["worker_rss_mb_by_variant"] = rss
    return {"acme_bank": _keys(details[f"acme_bank_{DEFAULT}"]),
            "follow_ups": {k: details[f"follow_ups_{DEFAULT}"][k] for k in ("right", "wrong", "n")},
            "faq_turn_p50_ms": {"before": p50[DEFAULT], "after": p50[STRONGER]},
            "worker_rss_mb": {"before": rss[DEFAULT], "after": rss[STRONGER]}}


def latency_part(work: Path, details: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Only the cost of each embedder: acme_bank trained with the learned decision and each
    stock embedder (a tuned copy costs the same per turn), then as in ``acme_part``."""
    runtimes, folders = {}, {}
    for variant, model in ((DEFAULT, None), (STRONGER, MPNET)):
        folders[variant] = copy_bot(ACME, work / f"acme-{variant}", {
            "model": {"generation": False},
            "embedder": {"tuning_rounds": 0, **({"model": model} if model else {})}})
        runtimes[variant] = trained(folders[variant])
    questions = [c.turns[-1] for c in acme_cases() if c.note == "paraphrase"][:60]
    p50 = faq_turn_p50(runtimes, questions, repeat)
    for runtime in runtimes.values():
        asyncio.run(runtime.close())
    rss = {variant: worker_rss_mb(folders[variant]) for variant in (DEFAULT, STRONGER)}
    details["latency_part"] = {"p50_ms": p50, "rss_mb": rss, "encoders": "stock (untuned)"}
    return {"faq_turn_p50_ms": {"before": p50[DEFAULT], "after": p50[STRONGER]},
            "worker_rss_mb": {"before": rss[DEFAULT], "after": rss[STRONGER]}}


def stackfaq_part(work: Path, details: dict[str, Any], part: str,
                  variants: dict[str, tuple[str, int | None, str | None]], *,
                  alternatives: bool) -> dict[str, Any]:
    """The StackFAQ bot (``alternatives``: False, the plain FAQ) in every variant."""
    for variant, (policy, rounds, model) in variants.items():
        folder = work / f"{part}-{variant}"
        cases = stackfaq_bot(folder, alternatives=alternatives)
        embedder = {k: v for k, v in (("tuning_rounds", rounds), ("model", model))
                    if v is not None}
        with (folder / "bot.yaml").open("a") as out:
            out.write(f"answers: {{policy: {policy}}}\n")
            if embedder:
                out.write(f"embedder: {json.dumps(embedder)}\n")
        said: dict[str, str] = {}
        runtime = trained(folder, said)
        scored = score_cases(runtime, cases)
        asyncio.run(runtime.close())
        details[f"{part}_{variant}"] = {"recall_at_1": _recall_at_1(folder, cases),
                                        "bot_train": said.get("answer policy"), **scored}
        print(part, variant, brief(details[f"{part}_{variant}"]), flush=True)
    chosen = details[f"{part}_{DEFAULT}"]
    keys = ("recall_at_1", "right", "wrong", "abstained", "n") if alternatives else \
        ("right", "wrong", "abstained", "n")
    return {k: v for k, v in {**chosen, **_keys(chosen)}.items() if k in keys}


def follow_up_cases() -> list[AnswerCase]:
    """acme_bank's 40 two-turn conversations written before reading its answers."""
    return load_answer_cases(ACME / "eval" / "follow_ups_blind.yaml")


def generated_figures(details: dict[str, Any]) -> dict[str, Any]:
    """The grounding check's figures, from benchmarks/grounding.py's own run (it needs the
    bot trained with generation and its LoRA adapter: its command is in that file)."""
    grounding = json.loads(GROUNDING.read_text())
    details["generated_from"] = {"file": "benchmarks/results/grounding.json",
                                 "command": grounding.get("command")}
    return {k: grounding[k] for k in ("unsupported_or_echo", "caught", "f1", "f1_quote", "n")}


def worker_rss_mb(folder: Path) -> float:
    """Resident memory (MB) of a fresh process that loaded the trained bot in ``folder``
    and answered a few questions, as a `bot serve` worker holds it."""
    script = ("import asyncio, sys\n"
              "from bot.definition.loader import load_bot\n"
              "from bot.runtime import BotRuntime\n"
              "from bot.server.pipeline import TurnPipeline\n"
              "from foundation.messages import UserMessage\n"
              "runtime = BotRuntime.load(load_bot(sys.argv[1]))\n"
              "async def turns():\n"
              "    pipeline = TurnPipeline(runtime)\n"
              "    for n, text in enumerate(['my card has not arrived', 'fees abroad?']):\n"
              "        await pipeline.handle(UserMessage(sender=f'r{n}', text=text, "
              "channel='rest'))\n"
              "asyncio.run(turns())\n"
              "print([l.split()[1] for l in open('/proc/self/status') "
              "if l.startswith('VmRSS')][0])\n")
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def _keys(scored: dict[str, Any]) -> dict[str, Any]:
    """The issue's keys (shares; a clarifying question counts as abstained)."""
    return {"right": scored["right"], "wrong": scored["wrong"],
            "abstained": round(scored["abstained"] + scored["clarified"], 4), "n": scored["n"]}


def _recall_at_1(folder: Path, cases: list[AnswerCase]) -> float:
    """Share of the covered questions whose right thread is the index's first hit."""
    bot = load_bot(folder)
    embedder = bot_embedder(bot)
    index, _ = build_index(bot, embedder)
    covered = [c for c in cases if c.expect[0][0] != NONE]
    vectors = embedder.embed([c.turns[-1] for c in covered])
    hits = [index.search_vector(v, 1) for v in vectors]
    right = sum(bool(h) and h[0].passage.id == c.expect[0][0]
                for h, c in zip(hits, covered, strict=True))
    return round(right / len(covered), 4)


if __name__ == "__main__":
    main()
