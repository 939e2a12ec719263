"""The development set multi-part reading is chosen on: two-part messages whose later part is
short (``benchmarks/data/multi_part_dev.yaml``), asked of the trained acme_bank.

Run: .venv/bin/python -m benchmarks.multi_part_dev [--out FILE]   (after `bot train
example_bots/acme_bank`; prints each message's outcome and the counts)
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

import yaml

from benchmarks.answers import ACME
from bot.definition.loader import load_bot
from bot.evaluation.answers import AnswerCase, answered_with, ask_all, outcome
from bot.runtime import BotRuntime
from foundation.messages import BotReply

DEV = Path(__file__).parent / "data" / "multi_part_dev.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the counts to this JSON file")
    args = parser.parse_args()
    items = yaml.safe_load(DEV.read_text(encoding="utf-8"))
    cases = [AnswerCase(f"m{n}", (str(item["question"]),),
                        tuple(tuple(str(e) for e in part) for part in item["expect"]))
             for n, item in enumerate(items)]
    bot = load_bot(ACME)
    runtime = BotRuntime.load(bot)

    async def ask() -> list[BotReply]:
        try:
            return await ask_all(runtime, cases)
        finally:
            await runtime.close()

    links = {i.name: i.faq for i in bot.config.intents if i.faq}
    counts: dict[str, Counter[str]] = {}
    for item, case, reply in zip(items, cases, asyncio.run(ask()), strict=True):
        result = outcome(case, reply, links)
        counts.setdefault(str(item["kind"]), Counter())[result] += 1
        print(f"{result:10s} {case.turns[0][:60]:60s} "
              f"{[sorted(a) for a in answered_with(reply, links)]}")
    figures = {kind: dict(found) for kind, found in counts.items()}
    print(json.dumps(figures))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
