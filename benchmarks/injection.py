"""How often the input guard flags prompt-injection attempts, and normal customers.

Run:
    .venv/bin/python benchmarks/injection.py --label "after"

Sets: ``benchmarks/data/injection.yaml`` (attacks written for this benchmark in several
languages and styles: ``dev`` may shape the guard, ``held_out`` never does; ``benign``,
customer messages that look a little like attacks), and the 10,003 real customer messages
of Banking77 (``../shared/data/banking77/train.csv``) as plain benign traffic. A message
counts as flagged when :func:`bot.server.guard.inspect_input` flags it (in ``block`` mode
the bot then answers with ``security.injection_reply``). Results go to
``benchmarks/results/injection.json`` (one row per ``--label``; the others are kept), with
the messages each set got wrong. ``held_out_2``/``benign_2`` (12 languages, 10 styles) were
written in a later round, before the guard was run on them.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.server.guard import inspect_input  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "injection.yaml"
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
RESULTS = ROOT / "benchmarks" / "results" / "injection.json"


def rate(texts: list[str], *, flagged_is_right: bool) -> dict[str, Any]:
    flagged = [t for t in texts if inspect_input(t).flagged]
    wrong = [t for t in texts if (t in flagged) != flagged_is_right]
    return {"messages": len(texts), "flagged": len(flagged),
            "flagged_rate": round(len(flagged) / len(texts), 4), "wrong": wrong[:40]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()
    sets = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    with BANKING77.open(encoding="utf-8") as handle:
        customers = [row["text"] for row in csv.DictReader(handle)]
    started = time.perf_counter()
    row = {
        "label": args.label,
        "command": "python benchmarks/injection.py " + " ".join(sys.argv[1:]),
        "attacks_dev": rate(sets["dev"], flagged_is_right=True),
        "attacks_held_out": rate(sets["held_out"], flagged_is_right=True),
        "attacks_held_out_2": rate(sets["held_out_2"], flagged_is_right=True),
        "benign_written": rate(sets["benign"], flagged_is_right=False),
        "benign_written_2": rate(sets["benign_2"], flagged_is_right=False),
        "benign_banking77": rate(customers, flagged_is_right=False),
    }
    row["ms_per_message"] = round(1000 * (time.perf_counter() - started)
                                  / sum(r["messages"] for r in row.values()
                                        if isinstance(r, dict)), 3)
    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    rows = [r for r in rows if r.get("label") != args.label] + [row]
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    for name in ("attacks_dev", "attacks_held_out", "attacks_held_out_2", "benign_written",
                 "benign_written_2", "benign_banking77"):
        result = row[name]
        print(f"{args.label:>12} {name:>17}: {result['flagged']}/{result['messages']} flagged "
              f"({100 * result['flagged_rate']:.1f} %)")


if __name__ == "__main__":
    main()
