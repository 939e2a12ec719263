"""Answer trust: answered right / answered wrong / abstained on questions the bot never saw.

Run: .venv/bin/python -m benchmarks.answers     (writes benchmarks/results/answers.json)

1. acme_bank, the whole bot (its trained models, the full turn pipeline, generation off so
   the figures measure the decision, not the dialogue model), on its held-out paraphrases
   (eval/faq_paraphrases.yaml) and the customer questions written before reading its FAQ
   (eval/customer_questions_blind.yaml, labelled afterwards); neither set is trained on.
   A turn is right when its citations (or the intent that answered) are the expected
   entries, wrong when it answers with anything else or answers a question the FAQ does
   not cover, abstained when it says it does not know or asks which of two was meant.
   "before" is the same bot with ``answers.policy: threshold`` (the cosine threshold).
2. StackFAQ (../shared/data/stackfaq): 100 threads become a bot's FAQ, each with its
   question and first 3 user paraphrases as ``alternatives``; the other paraphrases are
   asked. The remaining 25 threads are left out of the FAQ: their paraphrases are questions
   the bot must not answer.
3. FAQ turn latency, p50 over acme_bank questions answered from the FAQ, with the policy
   vs with the cosine threshold, the two alternating in one run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.faq_retrieval import DATA as STACKFAQ
from benchmarks.faq_retrieval import load_threads
from bot.build import train
from bot.definition.loader import load_bot
from bot.evaluation.answers import AnswerCase, load_answer_cases, score_cases
from bot.runtime import BotRuntime

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "answers.json"
ACME = ROOT / "example_bots" / "acme_bank"
STACKFAQ_COVERED, STACKFAQ_ALTERNATIVES = 100, 3


def copy_bot(source: Path, target: Path, *, overrides: str = "") -> Path:
    """A copy of a bot folder (without its build) with extra YAML appended to bot.yaml."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".bot"))
    if overrides:
        with (target / "bot.yaml").open("a", encoding="utf-8") as out:
            out.write("\n" + overrides + "\n")
    return target


def stackfaq_bot(folder: Path, seed: int = 0) -> list[AnswerCase]:
    """Write the StackFAQ bot into ``folder``; returns the questions to ask it."""
    threads = load_threads(STACKFAQ)
    random.Random(seed).shuffle(threads)
    folder.mkdir(parents=True)
    (folder / "faq").mkdir()
    cases: list[AnswerCase] = []
    with (folder / "faq" / "threads.jsonl").open("w", encoding="utf-8") as out:
        for n, thread in enumerate(threads):
            paraphrases = list(thread["rephrasings"])  # type: ignore[call-overload]
            if n < STACKFAQ_COVERED:
                out.write(json.dumps({"id": thread["id"], "question": thread["question"],
                                      "answer": thread["answer"],
                                      "alternatives": paraphrases[:STACKFAQ_ALTERNATIVES]})
                          + "\n")
                asked, expect = paraphrases[STACKFAQ_ALTERNATIVES:], str(thread["id"])
            else:
                asked, expect = paraphrases, "none"
            cases += [AnswerCase(f"{thread['id']}-{i}", (q,), ((expect,),))
                      for i, q in enumerate(asked)]
    (folder / "bot.yaml").write_text(
        "name: stackfaq\nfaq:\n  sources: [faq/]\nchannels:\n  rest: {auth: none}\n")
    return cases


def ask(bot_dir: Path, cases: list[AnswerCase]) -> dict[str, Any]:
    """Train the bot and score its replies to ``cases``."""
    bot = load_bot(bot_dir)
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        return score_cases(runtime, cases)
    finally:
        import asyncio
        asyncio.run(runtime.close())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("acme_bank", "stackfaq"))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "stackfaq"):
            for policy in ("threshold", "learned"):
                folder = work / f"stackfaq-{policy}"
                cases = stackfaq_bot(folder)
                with (folder / "bot.yaml").open("a") as out:
                    out.write(f"answers: {{policy: {policy}}}\n")
                started = time.perf_counter()
                scored = ask(folder, cases)
                scored["seconds"] = round(time.perf_counter() - started, 1)
                results.setdefault("stackfaq_policies", {})[policy] = scored
                print("stackfaq", policy, {k: v for k, v in scored.items()
                                           if not isinstance(v, dict | list)})
    del statistics
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(results, indent=2)[:3000])


if __name__ == "__main__":
    main()
