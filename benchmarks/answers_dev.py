"""The development split the knowledge-built training questions were chosen on (never the
questions benchmarks/answers.py reports).

Run: .venv/bin/python -m benchmarks.answers_dev [--tuned]

StackFAQ's threads are shuffled as in benchmarks/answers.py; only the 100 threads its FAQ
holds are used, and only their first 3 paraphrases (answers.py asks the others, and all of
the 25 left-out threads'; its plain bot never sees these 3, its bot with alternatives holds
them). Four rotations: 25 of the 100 threads are left out of the FAQ in turn, their
paraphrases must not be answered; the other 75 are the FAQ and their paraphrases are asked.

1. plain: the 75 threads as a plain FAQ (question and answer), each setting of
   ``knowledge_questions`` given on the command line as JSON (module constants), the answer
   policy learned as ``bot train`` learns it, then asked; also projected to answers.py's mix
   (674 covered, 275 uncovered questions).
2. with alternatives: 2 paraphrases as ``alternatives``, the third asked (and the third of
   the left-out threads), the policy with ``WITH_ALTERNATIVES`` off (as before) and on; with
   the stock encoder, and (``--tuned``, slow) the bot's tuned FAQ encoder with cross-fitted
   folds, as ``bot train`` does.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence

from adapters.answering import knowledge_questions
from adapters.answering.answer_policy import AnswerPolicy
from adapters.answering.policy_data import evidence_for, policy_examples
from adapters.settings import ClassifierSettings
from adapters.training.faq_encoder import tunable, tuned_copy
from benchmarks.faq_retrieval import DATA, load_threads
from retrieval.documents import Passage
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.index import FaqIndex

K, ROUNDS, LEFT_OUT = 3, 9, 25
Case = tuple[str, str | None]  # a question, the thread that answers it (None: none)


def rotations(alternatives: int) -> list[tuple[list[Passage], list[Case]]]:
    """(FAQ, questions) of each rotation."""
    threads = load_threads(DATA)
    random.Random(0).shuffle(threads)
    development = threads[:100]
    found = []
    for start in range(0, 100, LEFT_OUT):
        out = development[start:start + LEFT_OUT]
        faq = [t for t in development if t not in out]
        asked = slice(alternatives, 3) if alternatives else slice(0, 3)
        passages = [Passage(str(t["id"]), str(t["answer"]), "dev.jsonl", title=str(t["question"]),
                            question=str(t["question"]),
                            alternatives=tuple(list(t["rephrasings"])[:alternatives]))  # type: ignore[call-overload]
                    for t in faq]
        cases: list[Case] = [(q, str(t["id"])) for t in faq
                             for q in list(t["rephrasings"])[asked]]  # type: ignore[call-overload]
        cases += [(q, None) for t in out
                  for q in list(t["rephrasings"])[asked]]  # type: ignore[call-overload]
        found.append((passages, cases))
    return found


def outcomes(index: FaqIndex, embedder: Embedder, cases: Sequence[Case],
             refit: Callable[[Sequence[Passage]], Embedder] | None = None) -> Counter[str]:
    """The policy learned as `bot train` learns it (no intents), asked ``cases``."""
    evidence = evidence_for([], index, {})
    found = policy_examples(index, embedder, [], None, ClassifierSettings(), evidence, k=K,
                            refit=refit)
    policy = AnswerPolicy.fit(found.examples, evidence, max_wrong_rate=0.05)
    counts: Counter[str] = Counter()
    for (question, thread), vector in zip(cases, embedder.embed([q for q, _ in cases]),
                                          strict=True):
        decision = policy.decide(question, index.search_vector(vector, K), None)
        right = decision.best is not None and decision.best.target == thread
        counts["covered" if thread else "uncovered"] += 1
        if decision.action == "answer":
            counts["right" if right else ("wrong covered" if thread else "wrong uncovered")] += 1
    return counts


def cached_refit(stock: SentenceEmbedder) -> Callable[[Sequence[Passage]], Embedder]:
    """``bot train``'s refit (the stock encoder tuned on the fold's entries), each fold once."""
    folds: dict[tuple[tuple[str, tuple[str, ...]], ...], Embedder] = {}

    def refit(kept: Sequence[Passage]) -> Embedder:
        key = tuple((p.id, p.alternatives) for p in kept)
        if key not in folds:
            folds[key] = tuned_copy(stock, kept, ROUNDS) if tunable(kept) else stock
        return folds[key]
    return refit


def shares(counts: Counter[str]) -> dict[str, float]:
    n = counts["covered"] + counts["uncovered"]
    return {"right": round(counts["right"] / n, 4),
            "wrong": round((counts["wrong covered"] + counts["wrong uncovered"]) / n, 4),
            "n": n, "projected_right": round(674 / 949 * counts["right"] / counts["covered"], 4),
            "projected_wrong": round(674 / 949 * counts["wrong covered"] / counts["covered"]
                                     + 275 / 949 * counts["wrong uncovered"]
                                     / counts["uncovered"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=["{}"],
                        help='knowledge_questions constants as JSON, e.g. \'{"REORDERINGS": 0}\'')
    parser.add_argument("--tuned", action="store_true",
                        help="part 2 with the tuned encoder too (slow)")
    args = parser.parse_args()
    stock = SentenceEmbedder("all-MiniLM-L6-v2").load()
    plain = [(FaqIndex.build(p, stock), c) for p, c in rotations(0)]
    chosen = {name: getattr(knowledge_questions, name) for name in
              ("REORDERINGS", "OFF_TOPIC_SHARE", "WITH_ALTERNATIVES")}
    for setting in args.settings:
        for name, value in {**chosen, **json.loads(setting)}.items():
            setattr(knowledge_questions, name, value)
        total = sum((outcomes(index, stock, cases) for index, cases in plain), Counter())
        print("plain", setting, shares(total), flush=True)
    for name, value in chosen.items():
        setattr(knowledge_questions, name, value)
    for encoder in ("stock", "tuned") if args.tuned else ("stock",):
        totals: dict[bool, Counter[str]] = {False: Counter(), True: Counter()}
        for passages, cases in rotations(2):
            embedder: Embedder = stock
            refit = None
            if encoder == "tuned":
                embedder = tuned_copy(stock, passages, ROUNDS)
                refit = cached_refit(stock)  # the same folds for both settings
            index = FaqIndex.build(passages, embedder)
            for flag in (False, True):
                knowledge_questions.WITH_ALTERNATIVES = flag
                totals[flag] += outcomes(index, embedder, cases, refit)
        for flag, total in totals.items():
            print(f"alternatives, {encoder} encoder, WITH_ALTERNATIVES {flag}", shares(total),
                  flush=True)

if __name__ == "__main__":
    main()
