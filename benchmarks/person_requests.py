"""How well every bot hears a request for a person without an intent for it.

Run:
    .venv/bin/python benchmarks/person_requests.py

Sets: ``benchmarks/data/person_requests.yaml`` (requests and look-alikes in several
languages, ``dev`` shaped the patterns, ``held_out`` never did) and the 10,003 customer
messages of Banking77 (``../shared/data/banking77/train.csv``), none of which asks for a
person by our reading except those the script lists. A message counts when
:func:`bot.dialogue.person_request.asks_for_person` says it asks. Results go to
``benchmarks/results/person_requests.json``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.dialogue.person_request import asks_for_person  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "person_requests.yaml"
BANKING77 = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
RESULTS = ROOT / "benchmarks" / "results" / "person_requests.json"


def main() -> None:
    sets = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    result: dict[str, object] = {"command": "python benchmarks/person_requests.py"}
    for split in ("dev", "held_out"):
        asks, others = sets[split]["asks"], sets[split]["not"]
        missed = [t for t in asks if not asks_for_person(t)]
        false = [t for t in others if asks_for_person(t)]
        result[split] = {"requests": len(asks), "heard": len(asks) - len(missed),
                         "look_alikes": len(others), "false_alarms": len(false),
                         "missed": missed, "false_alarm_texts": false}
    with BANKING77.open(encoding="utf-8") as handle:
        customers = [row["text"] for row in csv.DictReader(handle)]
    flagged = [t for t in customers if asks_for_person(t)]
    result["banking77"] = {"messages": len(customers), "flagged": len(flagged),
                           "flagged_texts": flagged[:50]}
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for split in ("dev", "held_out"):
        row = result[split]
        assert isinstance(row, dict)
        print(f"{split:>9}: heard {row['heard']}/{row['requests']} requests, "
              f"{row['false_alarms']}/{row['look_alikes']} false alarms")
    print(f"banking77: {len(flagged)}/{len(customers)} flagged")


if __name__ == "__main__":
    main()
