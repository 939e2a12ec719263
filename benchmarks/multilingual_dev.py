"""The development set multilingual choices are made on (never the measured questions of
benchmarks/multilingual.py).

Run: .venv/bin/python -m benchmarks.multilingual_dev [--out FILE]

``benchmarks/data/multilingual_dev.yaml``: 40 of acme_bank's held-out English paraphrases
translated into Spanish and Chinese. acme_bank is copied with its FAQ translated
(``benchmarks/translated_bot.py``) and ``multilingual-e5-small``, trained, and asked each
question through the whole turn pipeline: right / wrong / abstained per language, and the
search's recall@1. Prints the figures (and writes them to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path

import yaml

from benchmarks.answers import ACME, copy_bot, trained
from benchmarks.multilingual import E5
from benchmarks.translated_bot import load_translations, translate_copy
from bot.evaluation.answers import AnswerCase, ask_all, outcome

DEV = Path(__file__).parent / "data" / "multilingual_dev.yaml"
LANGUAGES = ("en", "es", "zh")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    items = yaml.safe_load(DEV.read_text(encoding="utf-8"))
    figures: dict[str, object] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="multilingual-dev-") as work:
        copy = copy_bot(ACME, Path(work) / "acme", E5)
        translate_copy(copy, load_translations())
        runtime = trained(copy)
        assert runtime.knowledge is not None
        try:
            for code in LANGUAGES:
                cases = [AnswerCase(f"{code}-{n}", (str(item[code]),), ((str(item["expect"]),),))
                         for n, item in enumerate(items)]
                replies = asyncio.run(ask_all(runtime, cases))
                results = [outcome(c, r) for c, r in zip(cases, replies, strict=True)]
                right = sum(r in ("right", "partial") for r in results)
                wrong = results.count("wrong")
                found = sum(runtime.knowledge.search(c.turns[0], 1)[0].passage.id
                            == c.expect[0][0] for c in cases)
                figures[code] = {"right": right, "wrong": wrong,
                                 "abstained": len(cases) - right - wrong, "n": len(cases),
                                 "recall_at_1": round(found / len(cases), 3)}
                print(code, json.dumps(figures[code]), flush=True)
        finally:
            asyncio.run(runtime.close())
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
