"""Customers in other languages: answered from a translated FAQ, and MiniLM beside e5.

Run: nice -n 10 .venv/bin/python -m benchmarks.multilingual [--only SETUP ...]
     (writes benchmarks/results/multilingual.json and multilingual_details.json)

acme_bank is copied to a temporary folder once per setup (the example itself is never
edited) and each copy is trained and asked, through the whole turn pipeline, the held-out
questions of ``benchmarks/data/multilingual_questions.yaml``: thirty customer questions, each
in English, Spanish, German, French and Chinese, written before the FAQ's answers were read
and before the bot was run on them (three ask what the FAQ does not cover, ``expect: none``:
abstaining is right for them, and the scoring counts it as "abstained"; answering as wrong).

- ``all-MiniLM-L6-v2``: acme_bank as it is (tuned on its FAQ, the learned answer decision):
  the comparison row, in the details file only;
- ``multilingual-e5-small``: the English-only FAQ with ``embedder.model:
  multilingual-e5-small`` and ``language: {code: en}`` (the customer's language identified);
- ``multilingual-e5-small+translations``: the same with the FAQ translated into es, de, fr
  and zh (``benchmarks/data/acme_translations.yaml``, merged by
  ``benchmarks/translated_bot.py``): same-language questions and answers.

``results/multilingual.json`` (the issue's keys) takes ``english`` and ``languages`` from
the translated copy and ``cross_lingual`` (recall@1 of the FAQ search alone, every
non-English question with an expected entry, against the English-only FAQ) from the
English-only e5 copy. The details file keeps every setup's figures, each language's
``replies_in_language`` (replies the identifier reads as the customer's language),
``identified`` (questions whose language was identified as written), ``recall_at_1`` (the
search alone, in that setup's FAQ) and each question answered other than right, for
diagnosis; ``setup`` holds the machine's load and each setup's training and asking time.
``--only``: rerun some setups and keep the others' figures from the last details file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from adapters.classifiers.language import LanguageIdentifier
from adapters.settings import LanguageSettings
from benchmarks.answers import ACME, copy_bot, trained
from benchmarks.translated_bot import TRANSLATIONS, load_translations, translate_copy
from bot.dialogue.language import note_for
from bot.evaluation.answers import NONE, AnswerCase, answered_with, ask_all, outcome
from bot.runtime import BotRuntime
from foundation.messages import BotReply

QUESTIONS = Path(__file__).parent / "data" / "multilingual_questions.yaml"
RESULTS = Path(__file__).parent / "results" / "multilingual.json"  # the issue's keys
DETAILS = Path(__file__).parent / "results" / "multilingual_details.json"  # every setup
E5 = {"embedder": {"model": "multilingual-e5-small"}, "language": {"code": "en"}}
# setup -> (bot.yaml overrides, FAQ translated)
SETUPS: dict[str, tuple[dict[str, dict[str, Any]], bool]] = {
    "all-MiniLM-L6-v2": ({}, False),
    "multilingual-e5-small": (E5, False),
    "multilingual-e5-small+translations": (E5, True),
}
SAME_LANGUAGE = "multilingual-e5-small+translations"  # english, languages
CROSS_LINGUAL = "multilingual-e5-small"  # cross_lingual: question language != FAQ language


def load_cases() -> dict[str, list[AnswerCase]]:
    """The questions by language: each an AnswerCase expecting its entry (or ``also``), or
    ``("none",)`` for a question the FAQ does not answer."""
    items = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    by_language: dict[str, list[AnswerCase]] = {}
    for n, item in enumerate(items):
        first = str(item["expect"])
        expect = ((NONE,),) if first == NONE else \
            ((first, *(str(a) for a in item.get("also") or ())),)
        for code, question in item["questions"].items():
            by_language.setdefault(code, []).append(
                AnswerCase(f"{code}-{n}", (str(question),), expect, code))
    return by_language


def measure(runtime: BotRuntime, by_language: dict[str, list[AnswerCase]],
            identifier: LanguageIdentifier) -> dict[str, Any]:
    """One trained bot's figures: the issue's keys, and per language what explains them."""
    links = {i.name: i.faq for i in runtime.bot.config.intents if i.faq}
    figures: dict[str, Any] = {"languages": {}, "detail": {}}
    found, asked = 0, 0
    for code, cases in by_language.items():
        replies = asyncio.run(ask_all(runtime, cases))
        results = [outcome(c, r, links) for c, r in zip(cases, replies, strict=True)]
        right = sum(r in ("right", "partial") for r in results)
        wrong = results.count("wrong")
        counts = {"right": right, "wrong": wrong, "abstained": len(cases) - right - wrong,
                  "n": len(cases)}
        hits = [_best(runtime, c) for c in cases]
        answerable = [(c, h) for c, h in zip(cases, hits, strict=True) if NONE not in c.expect[0]]
        recalled = sum(h is not None and h in c.expect[0] for c, h in answerable)
        note = note_for(code, runtime.bot.config.languages.code)
        figures["detail"][code] = {
            **counts,
            "none_abstained": sum(NONE in c.expect[0] and r == "abstained"
                                  for c, r in zip(cases, results, strict=True)),
            "replies_in_language": sum(identifier.rank(r.text).code == code for r in replies),
            "answers_in_language": sum(identifier.rank(r.text).code == code
                                       for r, o in zip(replies, results, strict=True)
                                       if o in ("right", "partial", "wrong")),
            "replies_with_note": sum(bool(note) and r.text.endswith(str(note)) for r in replies),
            "identified": sum(identifier.identify(c.turns[-1]) == code for c in cases),
            "recall_at_1": round(recalled / len(answerable), 4) if answerable else None,
            "not_right": [_miss(c, r, o, h, links) for c, r, o, h
                          in zip(cases, replies, results, hits, strict=True)
                          if o not in ("right", "partial")]}
        if code == "en":
            figures["english"] = {k: counts[k] for k in ("right", "wrong", "n")}
            continue
        figures["languages"][code] = counts
        found += recalled
        asked += len(answerable)
    figures["cross_lingual"] = {"recall_at_1": round(found / asked, 4) if asked else None,
                                "n": asked}
    return figures


def _best(runtime: BotRuntime, case: AnswerCase) -> str | None:
    assert runtime.knowledge is not None
    best = runtime.knowledge.search(case.turns[-1], 1)
    return best[0].passage.id if best else None


def _miss(case: AnswerCase, reply: BotReply, result: str, best: str | None,
          links: dict[str, str]) -> dict[str, Any]:
    candidates = (reply.decision or {}).get("candidates") or []
    return {"question": case.turns[-1], "expect": list(case.expect[0]), "outcome": result,
            "kind": reply.kind, "got": [sorted(a) for a in answered_with(reply, links)],
            "search_best": best, "decision": [(c["target"], c["probability"])
                                              for c in candidates[:2]],
            "reply": reply.text[:120]}


def run_setup(name: str, work: Path, by_language: dict[str, list[AnswerCase]],
              identifier: LanguageIdentifier) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copy, (translate,) train and measure one setup: its figures and its timings."""
    overrides, translated = SETUPS[name]
    copy = copy_bot(ACME, work / name, overrides)
    about: dict[str, Any] = {}
    if translated:
        about["translations"] = translate_copy(copy, load_translations())
    started = time.perf_counter()
    runtime = trained(copy)
    about["train_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    try:
        figures = measure(runtime, by_language, identifier)
    finally:
        asyncio.run(runtime.close())
    about["ask_s"] = round(time.perf_counter() - started, 1)
    return figures, about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SETUPS), nargs="+", default=list(SETUPS),
                        help="setups to run (the others keep their figures in the details)")
    args = parser.parse_args()
    by_language = load_cases()
    identifier = LanguageIdentifier(LanguageSettings()).load()
    kept: dict[str, Any] = json.loads(DETAILS.read_text(encoding="utf-8")) \
        if DETAILS.exists() and set(args.only) != set(SETUPS) else {}
    results = {k: v for k, v in kept.items() if k in SETUPS and k not in args.only}
    setup: dict[str, Any] = {
        "questions": str(QUESTIONS.relative_to(ACME.parent.parent)),
        "translations": str(TRANSLATIONS.relative_to(ACME.parent.parent)),
        "per_language": {k: len(v) for k, v in by_language.items()},
        "expect_none": sum(NONE in c.expect[0] for c in by_language["en"]),
        "faq": "example_bots/acme_bank (copies; the translated copy merges the translations)",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "setups": {k: v for k, v in (kept.get("setup") or {}).get("setups", {}).items()
                   if k in results}}
    with tempfile.TemporaryDirectory(prefix="multilingual-") as work:
        for name in SETUPS:
            if name not in args.only:
                continue
            figures, about = run_setup(name, Path(work), by_language, identifier)
            results[name] = figures
            setup["setups"][name] = about
            print(name, json.dumps({k: v for k, v in figures.items() if k != "detail"}),
                  flush=True)
    setup["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if SAME_LANGUAGE in results and CROSS_LINGUAL in results:
        issue = {"english": results[SAME_LANGUAGE]["english"],
                 "languages": results[SAME_LANGUAGE]["languages"],
                 "cross_lingual": results[CROSS_LINGUAL]["cross_lingual"]}
        RESULTS.write_text(json.dumps(issue, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    ordered = {k: results[k] for k in SETUPS if k in results}
    DETAILS.write_text(json.dumps({**ordered, "setup": setup}, indent=2, ensure_ascii=False)
                       + "\n", encoding="utf-8")
    print(json.dumps(setup, indent=2))


if __name__ == "__main__":
    main()
