"""Per-bot tuning of the FAQ retrieval encoder (an experiment): stock vs tuned MiniLM.

Run: .venv/bin/python -m benchmarks.faq_encoder   (writes benchmarks/results/faq_encoder.json)

The encoder is tuned contrastively on the FAQ's own texts with
``adapters.training.encoder_tuning.tune_encoder`` (in-batch negatives, lr 2e-5, 32 entries a step):
each FAQ entry is one label over its question and ``alternatives`` (and, in the settings
marked ``+answers``, its answer text). Retrieval is the project's ``FaqIndex`` either way.

1. StackFAQ (../shared/data/stackfaq): each thread's title + answer with its first 3
   paraphrases as alternatives; the other paraphrases are asked. Every setting of ``--grid``
   is tuned and scored here, and the best (recall@1, then recall@3, then fewer steps) is
   the one used for acme_bank: settings are chosen on StackFAQ only.
2. acme_bank, its FAQ loaded as ``bot train`` loads it, tuned on the FAQ's texts only, scored
   on the held-out ``eval/faq_paraphrases.yaml`` (never used to choose anything).
3. acme_bank, folds of its alternatives: each fold's alternatives are left out of tuning and
   of the index and then asked, stock vs tuned on the same folds (the answer policy learns
   from such held-out alternatives).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from adapters.classifiers.intents import tuned_encoder
from adapters.training.encoder_tuning import BATCH_INTENTS, LEARNING_RATE, pairable_intents
from benchmarks.faq_retrieval import DATA, ROOT, load_threads, recall
from bot.definition.loader import load_bot
from bot.evaluation.generation import load_paraphrases
from retrieval.documents import Passage
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.index import FaqIndex
from retrieval.knowledge import load_passages

MODEL = "all-MiniLM-L6-v2"
ALTERNATIVES = 3  # StackFAQ paraphrases per thread written as alternatives (faq_retrieval.py)
ACME = ROOT / "example_bots" / "acme_bank"
Question = tuple[str, str]  # (gold passage id, question)


@dataclass(frozen=True)
class Setting:
    """How long to tune (passes over the FAQ's entries) and on what."""

    rounds: int
    answers: bool = False  # the answer text is a positive of its question and alternatives

    @property
    def name(self) -> str:
        return f"{self.rounds} rounds" + (" +answers" if self.answers else "")

    @classmethod
    def parse(cls, text: str) -> Setting:
        rounds, _, extra = text.partition("+")
        return cls(int(rounds), answers=extra == "answers")


GRID = "3,9"


def tuning_data(passages: Sequence[Passage], *, answers: bool) -> tuple[list[str], list[str]]:
    """Texts labelled by their FAQ entry: question, alternatives (and answer)."""
    pairs = [(text, p.id) for p in passages
             for text in [*([p.question] if p.question else []), *p.alternatives,
                          *([p.text] if answers else [])]]
    return [t for t, _ in pairs], [label for _, label in pairs]


def tune(passages: Sequence[Passage], setting: Setting, *, seed: int) -> tuple[SentenceEmbedder,
                                                                               dict[str, Any]]:
    """A fresh copy of the encoder tuned on ``passages``, and what the tuning cost."""
    texts, labels = tuning_data(passages, answers=setting.answers)
    entries = len(pairable_intents(texts, labels))
    steps = setting.rounds * len(range(0, entries - 1, BATCH_INTENTS))  # tune_encoder's batches
    rss_before = _memory_mb("VmRSS", reset_peak=True)
    started = time.perf_counter()
    encoder = tuned_encoder(SentenceEmbedder(MODEL), texts, labels, steps=steps, seed=seed)
    cost = {"entries": entries, "texts": len(texts), "steps": steps,
            "seconds": round(time.perf_counter() - started, 1),
            "rss_before_mb": rss_before,
            "peak_rss_mb": _memory_mb("VmHWM")}
    print(f"  tuned {setting.name}: {cost}", file=sys.stderr, flush=True)
    return encoder, cost


def score(passages: list[Passage], questions: Sequence[Question],
          embedder: Embedder) -> dict[str, float]:
    """recall@1/3/5 of ``questions`` against a ``FaqIndex`` of ``passages``."""
    index = FaqIndex.build(passages, embedder)
    position = {p.id: i for i, p in enumerate(passages)}
    vectors = embedder.embed([q for _, q in questions])
    ranked = [[position[h.passage.id] for h in index.search_vector(v, 5)] for v in vectors]
    return recall(ranked, [position.get(gold, -1) for gold, _ in questions])


def stackfaq() -> tuple[list[Passage], list[Question]]:
    """Threads as passages (title, answer, first paraphrases) and the other paraphrases."""
    threads = load_threads(DATA)
    said = {str(t["id"]): cast(list[str], t["rephrasings"]) for t in threads}
    passages = [Passage(id=str(t["id"]), text=str(t["answer"]), source="stackfaq",
                        question=str(t["question"]),
                        alternatives=tuple(said[str(t["id"])][:ALTERNATIVES])) for t in threads]
    return passages, [(i, q) for i, qs in said.items() for q in qs[ALTERNATIVES:]]


def alternative_folds(passages: list[Passage], folds: int,
                      seed: int) -> list[tuple[list[Passage], list[Question]]]:
    """``folds`` splits of every alternative: the passages without the fold's, and the fold."""
    held = [(p.id, a) for p in passages for a in p.alternatives]
    random.Random(seed).shuffle(held)
    splits = []
    for fold in range(folds):
        out = held[fold::folds]
        left = set(out)
        kept = [replace(p, alternatives=tuple(a for a in p.alternatives if (p.id, a) not in left))
                for p in passages]
        splits.append((kept, out))
    return splits


def compare(passages: list[Passage], questions: Sequence[Question], stock: SentenceEmbedder,
            setting: Setting, seed: int) -> dict[str, Any]:
    encoder, cost = tune(passages, setting, seed=seed)
    result = {"questions": len(questions), "stock": score(passages, questions, stock),
              "tuned": score(passages, questions, encoder), "tuning": cost}
    del encoder
    gc.collect()
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "faq_encoder.json"))
    parser.add_argument("--grid", default=GRID, help="settings tried on StackFAQ: "
                        "ROUNDS or ROUNDS+answers, comma-separated (default %(default)s)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    stock = SentenceEmbedder(MODEL).load()

    passages, questions = stackfaq()
    print(f"StackFAQ: {len(passages)} threads, {len(questions)} questions", file=sys.stderr)
    stock_stackfaq = score(passages, questions, stock)
    tried: dict[str, Any] = {}
    for setting in map(Setting.parse, args.grid.split(",")):
        encoder, cost = tune(passages, setting, seed=args.seed)
        tried[setting.name] = {**score(passages, questions, encoder), "tuning": cost}
        print(f"  {setting.name}: {tried[setting.name]}", file=sys.stderr, flush=True)
        del encoder
        gc.collect()
    chosen = max(map(Setting.parse, args.grid.split(",")),
                 key=lambda s: (tried[s.name]["recall@1"], tried[s.name]["recall@3"],
                                -tried[s.name]["tuning"]["steps"]))

    bot = load_bot(ACME)
    assert bot.config.faq is not None
    acme = load_passages(bot.faq_sources(), bot.config.faq)
    print(f"acme_bank with {chosen.name}", file=sys.stderr, flush=True)
    held_out = compare(acme, load_paraphrases(bot), stock, chosen, args.seed)
    folds = [compare(kept, out, stock, chosen, args.seed)
             for kept, out in alternative_folds(acme, args.folds, args.seed)]
    asked = sum(f["questions"] for f in folds)

    def pooled(which: str) -> dict[str, float]:
        return {k: round(sum(f[which][k] * f["questions"] for f in folds) / asked, 4)
                for k in folds[0][which]}

    results = {
        "command": " ".join(["python -m benchmarks.faq_encoder",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "load_average": load_start,
                    "load_average_end": os.getloadavg()},
        "model": MODEL, "learning_rate": LEARNING_RATE, "entries_per_step": BATCH_INTENTS,
        "seed": args.seed,
        "stackfaq": {"threads": len(passages), "questions": len(questions),
                     "alternatives_per_thread": ALTERNATIVES, "stock": stock_stackfaq,
                     "tuned": tried},
        "chosen": {"setting": chosen.name, "rounds": chosen.rounds, "answers": chosen.answers,
                   "by": "StackFAQ recall@1, then recall@3, then fewer steps"},
        "acme_bank": {"passages": len(acme), "held_out_paraphrases": held_out,
                      "alternatives_left_out": {"folds": args.folds, "questions": asked,
                                                "stock": pooled("stock"),
                                                "tuned": pooled("tuned"), "per_fold": folds}},
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _memory_mb(field: str, *, reset_peak: bool = False) -> int:
    """The process's resident memory (VmRSS) or its peak since the last reset (VmHWM)."""
    if reset_peak:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: restart the VmHWM peak
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024)
    raise OSError(f"no {field} in /proc/self/status")


if __name__ == "__main__":
    main()
