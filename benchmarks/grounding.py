"""Generated answers that invent or echo: how many the check catches, how many still reach
the customer (counted by a second, independent reading), and what the answers are worth.

Run (after `.venv/bin/bot train` of a copy of acme_bank with its LoRA adapter):
    .venv/bin/python -m benchmarks.grounding --bot /tmp/acme_gen

On acme_bank's held-out paraphrases (``eval/faq_paraphrases.yaml``, 60 spread evenly; never
trained on), each asked as the first message of a new session through the whole turn, with
``model.exact_answer_threshold: 1.0`` so that every answered question is generated (the
fast path would quote the entry instead):

- ``caught``: generated replies the check (``adapters/answering/grounding.py``) replaced by
  the passage's own answer (the reply's ``decision`` says ``generated_replaced``);
- ``unsupported_or_echo``: replies that reached the customer and state a number not in a
  cited passage, open with an entry's question or title, show "?:" or a role label, or
  hand the question back; read by this script's own rules, not by the check;
- ``f1`` / ``f1_quote``: token F1 of the replies (answered ones) against the expected entry's
  answer, and of the top retrieved passage quoted as written.

Results: ``benchmarks/results/grounding.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot.definition.loader import load_bot
from bot.runtime import BotRuntime
from foundation.messages import UserMessage

RESULTS = Path(__file__).parent / "results" / "grounding.json"
QUESTIONS = 60


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9£%]+", text.lower())


def f1(reply: str, gold: str) -> float:
    got, want = tokens(reply), tokens(gold)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def unsupported_or_echo(reply: str, question: str, cited: list[Any],
                        headings: list[str]) -> str | None:
    """This script's own reading of a reply that reached the customer (None: clean)."""
    support = " ".join([question, *(p.text for p in cited), *(p.question or "" for p in cited)])
    numbers = set(re.findall(r"\d[\d,.]*\d|\d", reply))
    known = {n.replace(",", "") for n in re.findall(r"\d[\d,.]*\d|\d", support)}
    missing = [n for n in numbers if n.replace(",", "") not in known]
    if missing:
        return f"number {missing[0]}"
    lowered = reply.lower().strip()
    if "?:" in reply or re.search(r"\b(user|assistant|system):", lowered):
        return "prompt structure"
    if any(lowered.startswith(h.lower().rstrip("?.")) for h in headings if len(h) > 10):
        return "opens with an entry's question"
    if lowered.rstrip("?!. ") and set(tokens(reply)) <= set(tokens(question)) | {"yes", "no"}:
        return "hands the question back"
    return None


def questions(bot: Path) -> list[tuple[str, str]]:
    items = yaml.safe_load((bot / "eval" / "faq_paraphrases.yaml").read_text(encoding="utf-8"))
    pairs = [(item["id"], q) for item in items for q in item["questions"]]
    step = max(1, len(pairs) // QUESTIONS)
    return pairs[::step][:QUESTIONS]


async def ask_all(runtime: BotRuntime, asked: list[tuple[str, str]]) -> list[dict[str, Any]]:
    index = runtime.knowledge.index if runtime.knowledge else None
    assert index is not None
    headings = [h for p in index.passages for h in (p.question or "", p.title or "") if h]
    rows = []
    for n, (entry, question) in enumerate(asked):
        reply = await runtime.dialogue.handle(UserMessage(f"g{n}", question))
        cited = [index.get(c.passage_id) for c in reply.citations]
        cited = [p for p in cited if p is not None]
        gold = index.get(entry)
        top = runtime.knowledge.search(question, 1) if runtime.knowledge else []
        replaced = (reply.decision or {}).get("generated_replaced")
        rows.append({
            "question": question, "entry": entry, "kind": reply.kind, "text": reply.text,
            "cited": [c.passage_id for c in reply.citations], "replaced": replaced,
            "problem": unsupported_or_echo(reply.text, question, cited, headings)
            if reply.kind in ("generated", "faq") else None,
            "f1": f1(reply.text, gold.text) if gold and reply.kind != "fallback" else None,
            "f1_quote": f1(top[0].passage.text, gold.text) if gold and top else None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, required=True, help="a trained acme_bank copy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grounding-") as tmp:
        copy = Path(tmp) / args.bot.name
        shutil.copytree(args.bot, copy, ignore=shutil.ignore_patterns("sessions.sqlite3*"))
        config_file = copy / "bot.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        config["model"] = {**(config.get("model") or {}), "generation": True,
                           "exact_answer_threshold": 1.0}
        config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        started = time.perf_counter()
        runtime = BotRuntime.load(load_bot(copy))
        try:
            rows = asyncio.run(ask_all(runtime, questions(copy)))
        finally:
            asyncio.run(runtime.close())
    answered = [r for r in rows if r["f1"] is not None]
    result = {
        "n": len(rows),
        "caught": sum(1 for r in rows if r["replaced"]),
        "unsupported_or_echo": sum(1 for r in rows if r["problem"]),
        "f1": round(sum(r["f1"] for r in answered) / max(1, len(answered)), 3),
        "f1_quote": round(sum(r["f1_quote"] for r in answered) / max(1, len(answered)), 3),
        "answered": len(answered),
        "generated_shown": sum(1 for r in rows if r["kind"] == "generated"),
        "kinds": dict(Counter(r["kind"] for r in rows)),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": list(os.getloadavg()),
        "command": "python -m benchmarks.grounding --bot " + str(args.bot),
        "replies": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print({k: v for k, v in result.items() if k != "replies"})


if __name__ == "__main__":
    main()
