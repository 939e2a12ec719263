"""Customers in other languages: MiniLM against multilingual-e5-small, side by side.

Run: nice -n 10 .venv/bin/python -m benchmarks.multilingual
     (writes benchmarks/results/multilingual.json)

acme_bank is copied to a temporary folder twice (the example itself is never edited):
as it is (``all-MiniLM-L6-v2`` tuned on its FAQ, the learned answer decision) and with
``embedder.model: multilingual-e5-small`` and ``language: {code: en}`` (the stock model:
it cannot be tuned). Each copy is trained and asked, through the whole turn pipeline, the
held-out questions of ``benchmarks/data/multilingual_questions.yaml``: ten customer
questions in English, Spanish, German, French and Chinese, written before the bot was run
on them. Each model's figures use the issue's keys:

- ``english``: right / wrong / n on the English questions;
- ``languages.<code>``: right / wrong / abstained / n per language (a wrong answer cites
  another entry; abstained: the bot said it did not know or asked which was meant). The FAQ
  has no translations yet, so these questions are answered from the English FAQ: they are
  cross-lingual through the whole bot, not same-language;
- ``cross_lingual``: recall@1 of the FAQ search alone over every non-English question.

``setup`` records the questions' file, the machine's load and each model's training and
asking time, and how many non-English replies carried the note line saying the answer is in
English (``bot/dialogue/language.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.answers import ACME, copy_bot, trained
from bot.dialogue.language import note_for
from bot.evaluation.answers import AnswerCase, ask_all, outcome
from bot.runtime import BotRuntime

QUESTIONS = Path(__file__).parent / "data" / "multilingual_questions.yaml"
RESULTS = Path(__file__).parent / "results" / "multilingual.json"  # the keys
DETAILS = Path(__file__).parent / "results" / "multilingual_details.json"  # both models
MEASURED = "multilingual-e5-small"  # whose figures go into RESULTS
MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "all-MiniLM-L6-v2": {},  # acme_bank as it is
    "multilingual-e5-small": {"embedder": {"model": "multilingual-e5-small"},
                              "language": {"code": "en"}},
}


def load_cases() -> dict[str, list[AnswerCase]]:
    """The questions by language: each an AnswerCase expecting its entry (or ``also``)."""
    items = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    by_language: dict[str, list[AnswerCase]] = {}
    for n, item in enumerate(items):
        expect = ((str(item["expect"]), *(str(a) for a in item.get("also") or ())),)
        for code, question in item["questions"].items():
            by_language.setdefault(code, []).append(
                AnswerCase(f"{code}-{n}", (str(question),), expect, code))
    return by_language


def measure(runtime: BotRuntime, by_language: dict[str, list[AnswerCase]]) -> dict[str, Any]:
    """The issue's figures for one trained bot, and how many replies carried the note."""
    links = {i.name: i.faq for i in runtime.bot.config.intents if i.faq}
    figures: dict[str, Any] = {"languages": {}}
    noted, found, asked = 0, 0, 0
    for code, cases in by_language.items():
        replies = asyncio.run(ask_all(runtime, cases))
        results = [outcome(c, r, links) for c, r in zip(cases, replies, strict=True)]
        right = sum(r in ("right", "partial") for r in results)
        wrong = results.count("wrong")
        if code == "en":
            figures["english"] = {"right": right, "wrong": wrong, "n": len(cases)}
            continue
        figures["languages"][code] = {"right": right, "wrong": wrong,
                                      "abstained": len(cases) - right - wrong, "n": len(cases)}
        note = note_for(code, "en")
        noted += sum(bool(note) and r.text.endswith(str(note)) for r in replies)
        assert runtime.knowledge is not None
        for case in cases:
            best = runtime.knowledge.search(case.turns[-1], 1)
            found += bool(best) and best[0].passage.id in case.expect[0]
            asked += 1
    figures["cross_lingual"] = {"recall_at_1": round(found / asked, 4) if asked else None,
                                "n": asked}
    figures["_noted"] = noted
    return figures


def main() -> None:
    by_language = load_cases()
    results: dict[str, Any] = {}
    setup: dict[str, Any] = {
        "questions": str(QUESTIONS.relative_to(ACME.parent.parent)),
        "per_language": {k: len(v) for k, v in by_language.items()},
        "faq": "example_bots/acme_bank (English, no translations)",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="multilingual-") as work:
        for model, overrides in MODELS.items():
            started = time.perf_counter()
            runtime = trained(copy_bot(ACME, Path(work) / model, overrides))
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            figures = measure(runtime, by_language)
            asyncio.run(runtime.close())
            setup["models"][model] = {"train_s": round(train_s, 1),
                                      "ask_s": round(time.perf_counter() - started, 1),
                                      "replies_with_note": figures.pop("_noted")}
            results[model] = figures
            print(model, json.dumps(figures), flush=True)
    setup["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(results[MEASURED], indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    DETAILS.write_text(json.dumps({**results, "setup": setup}, indent=2, ensure_ascii=False)
                       + "\n", encoding="utf-8")
    print(json.dumps(setup, indent=2))


if __name__ == "__main__":
    main()
