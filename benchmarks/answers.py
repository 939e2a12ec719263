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
   "before" is the same bot with ``answers.policy: threshold`` (the cosine threshold) and
   the stock encoder; "stock_encoder" the learned policy without the bot's tuned FAQ
   encoder (``embedder.tuning_rounds: 0``).
2. StackFAQ (../shared/data/stackfaq): 100 threads become a bot's FAQ, each with its
   question and first 3 user paraphrases as ``alternatives``; the other paraphrases are
   asked. The remaining 25 threads are left out of the FAQ: their paraphrases are questions
   the bot must not answer. ``stackfaq_plain``: the same bot with every ``alternatives``
   removed (a plain FAQ, as most teams write one), asked the same questions; "before" is
   what it got until the policy learned from the knowledge itself: the cosine threshold
   (``answers.policy: threshold``, the fallback the learned policy took with no alternatives).
3. FAQ turn latency, p50 over acme_bank questions answered from the FAQ, with the policy
   vs with the cosine threshold, the two alternating in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
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
# variant: (answers.policy, embedder.tuning_rounds; None: the bot's default)
VARIANTS = {"threshold": ("threshold", 0), "stock_encoder": ("learned", 0),
            "learned": ("learned", None)}
PARTS = ("acme_bank", "stackfaq", "stackfaq_plain")


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
                    started = time.perf_counter()
                    await pipeline.handle(UserMessage(sender=f"p50-{round_}-{n}",
                                                      text=question, channel="rest"))
                    seconds[name].append(time.perf_counter() - started)
        return {k: round(statistics.median(v) * 1000, 2) for k, v in seconds.items()}
    return asyncio.run(run())


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
    parser.add_argument("--only", choices=PARTS, nargs="+", default=list(PARTS),
                        help="the parts to run (the others keep their figures in the file)")
    parser.add_argument("--repeat", type=int, default=3, help="latency rounds")
    args = parser.parse_args()
    machine: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    results: dict[str, Any] = {"machine": machine}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "acme_bank" in args.only:
            cases = acme_cases()
            runtimes = {}
            for variant, (policy, rounds) in VARIANTS.items():
                folder = copy_bot(ACME, work / f"acme-{variant}", {
                    "answers": {"policy": policy}, "model": {"generation": False},
                    **({} if rounds is None else {"embedder": {"tuning_rounds": rounds}})})
                runtimes[variant] = trained(folder)
                scored = score_cases(runtimes[variant], cases)
                details[f"acme_bank_{variant}"] = scored
                print("acme_bank", variant, brief(scored), flush=True)
            results["acme_bank"] = _keys(details["acme_bank_learned"])
            results["acme_bank_before"] = _keys(details["acme_bank_threshold"])
            results["acme_bank_stock_encoder"] = _keys(details["acme_bank_stock_encoder"])
            questions = [c.turns[-1] for c in cases if c.note == "paraphrase"][:60]
            p50 = faq_turn_p50({k: runtimes[k] for k in ("threshold", "learned")}, questions,
                               args.repeat)
            results["faq_turn_p50_ms"] = {"before": p50["threshold"], "after": p50["learned"]}
            for runtime in runtimes.values():
                asyncio.run(runtime.close())
        if "stackfaq_plain" in args.only:
            runs = {}
            for variant, policy in (("threshold", "threshold"), ("learned", "learned")):
                folder = work / f"stackfaq_plain-{variant}"
                cases = stackfaq_bot(folder, alternatives=False)
                with (folder / "bot.yaml").open("a") as out:
                    out.write(f"answers: {{policy: {policy}}}\n")
                said: dict[str, str] = {}
                runtime = trained(folder, said)
                scored = score_cases(runtime, cases)
                asyncio.run(runtime.close())
                details[f"stackfaq_plain_{variant}"] = scored
                runs[variant] = {"recall_at_1": _recall_at_1(folder, cases), **_keys(scored)}
                if "answer policy" in said:
                    runs[variant]["bot_train"] = said["answer policy"]
                print("stackfaq_plain", variant, brief(scored), said.get("answer policy"),
                      flush=True)
            results["stackfaq_plain"] = runs["learned"]
            results["stackfaq_plain_before"] = runs["threshold"]
        if "stackfaq" in args.only:
            recall = {}
            for variant, (policy, rounds) in VARIANTS.items():
                folder = work / f"stackfaq-{variant}"
                cases = stackfaq_bot(folder)
                with (folder / "bot.yaml").open("a") as out:
                    out.write(f"answers: {{policy: {policy}}}\n")
                    if rounds is not None:
                        out.write(f"embedder: {{tuning_rounds: {rounds}}}\n")
                runtime = trained(folder)
                scored = score_cases(runtime, cases)
                asyncio.run(runtime.close())
                recall[variant] = _recall_at_1(folder, cases)
                details[f"stackfaq_{variant}"] = scored
                print("stackfaq", variant, brief(scored), flush=True)
            results["stackfaq"] = {"recall_at_1": recall["learned"],
                                   **_keys(details["stackfaq_learned"])}
            results["stackfaq_before"] = {"recall_at_1": recall["threshold"],
                                          **_keys(details["stackfaq_threshold"])}
            results["stackfaq_stock_encoder"] = {"recall_at_1": recall["stock_encoder"],
                                                 **_keys(details["stackfaq_stock_encoder"])}
    machine["load_average_end"] = os.getloadavg()
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    kept_details = json.loads(DETAILS.read_text()) if DETAILS.exists() else {}
    if set(args.only) != set(PARTS):  # the other parts keep their figures and machine
        del results["machine"]
        results.update({f"machine_{part}": machine for part in args.only})
    results = {**kept, **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    DETAILS.write_text(json.dumps({**kept_details, **details}, indent=1) + "\n")
    print(json.dumps(results, indent=2))


def _keys(scored: dict[str, Any]) -> dict[str, Any]:
    """The issue's keys (shares; clarified counts as abstained, partial answers apart)."""
    return {"right": scored["right"], "wrong": scored["wrong"],
            "abstained": round(scored["abstained"] + scored["clarified"], 4),
            "n": scored["n"], "partial": scored["partial"], "clarified": scored["clarified"],
            "best_candidate_right": scored["best_candidate_right"],
            "by_note": scored["by_note"]}


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
