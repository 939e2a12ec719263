"""The learning loop on acme_bank: import its past conversations, suggest, accept, retrain;
held-out later conversations answered before and after.

    .venv/bin/python -m benchmarks.learning      # ~15 min on 2 cores (the adapter retrains)

Run after `bot train example_bots/acme_bank`; it works on a copy of the bot.
Held out: ``eval/later_conversations.jsonl`` (never imported): the first question of each
conversation, asked as a new user. Labels: ``eval/conversation_topics.yaml``, an FAQ entry
id or one of the topics the FAQ lacks. A reply is right when every answer it gives is an
entry of the question's topic: the entry itself, or for an entry learned from a suggestion,
the topic most of the conversations it was mined from have (the labels are used only here,
never by the miner). Clarifying questions, fallbacks and handoffs count as abstained.
Every suggestion is accepted, as a team that trusts the miner would (with ``--force``, so
that text the accept check would refuse is measured rather than stopping the run).
``private_leaks``: the people's names and redaction placeholders found in the text the
suggestions merge, by :func:`private_leaks`, a check of its own on the raw export (not the
miner's name finder).
Writes ``results/learning.json`` (the issue's keys: before, after, n_heldout, promoted,
round_trip_s, private_leaks) and ``results/learning_details.json`` (everything else: the
gate's explanation, what was suggested and accepted, the errors, the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from benchmarks.load import ROOT
from benchmarks.report import write_results
from bot.cli import main as bot
from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot
from bot.evaluation.answers import NONE, AnswerCase, ask_all, summarise
from bot.learning.formats import parse, read_bytes
from bot.learning.mining import first_question
from bot.runtime import BotRuntime

RESULTS = Path(__file__).parent / "results" / "learning.json"
HELD_OUT = "eval/later_conversations.jsonl"
TOPICS = "eval/conversation_topics.yaml"
PAST = "history/past_conversations.jsonl"
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")  # [PHONE], [EMAIL], ...: masked on import
CLOSING = re.compile(r"^(kind |best |warm |many )?(regards|thanks|thank you|cheers|best|"
                     r"sincerely|yours\b.*)[,.!]?$", re.IGNORECASE)
SALUTATION = re.compile(r"^(?:Dear|Hi|Hello)\s+(?:(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?"
                        r"([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
NOT_PEOPLE = {"Sir", "Madam", "Team", "All", "There", "Acme", "Bank", "Support", "Ava"}
MERGED = {"faq": ("entry", ("question", "answer", "alternatives")),
          "alternatives": ("entry", ("alternatives",)),
          "intent": ("intent", ("examples", "title", "description"))}


def history_names(path: Path) -> set[str]:
    """The people a raw export names: each agent (``"name": "agent:Maria"``), each customer
    by the line after their closing ("Kind regards,\nJane Smith") and by the agents'
    salutations ("Dear Mr Hughes,")."""
    names: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        for message in json.loads(line)["messages"] if line.strip() else []:
            author = str(message.get("name") or "")
            if author.startswith("agent:"):
                names.add(author.split(":", 1)[1])
            lines = [t.strip() for t in str(message["content"]).splitlines() if t.strip()]
            if author.startswith("agent:") and lines and (hello := SALUTATION.match(lines[0])):
                names.update(hello.group(1).split())
            if message["role"] == "user":
                names.update(word for before, after in pairwise(lines)
                             if CLOSING.match(before) and re.fullmatch(
                                 r"[A-Z][a-z]+(?: [A-Z][a-z'-]+){0,2}", after)
                             for word in after.split())
    return names - NOT_PEOPLE


def private_leaks(history: Path, suggestions: Path) -> list[str]:
    """``file: field: value`` for each name of a person in ``history`` (the raw export) and
    each placeholder in the text the suggestion files under ``suggestions`` merge into the
    bot (the entry or intent, not the example conversations kept for review)."""
    names = history_names(history)
    person = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b") \
        if names else None
    found: list[str] = []
    for path in sorted(suggestions.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        key, fields = MERGED.get(data.get("kind"), ("", ()))
        item = data.get(key) or {}
        for field in fields:
            value = item.get(field)
            for n, text in enumerate(value if isinstance(value, list) else [value]):
                where = f"{path.name}: {key}.{field}" + (f"[{n}]" if isinstance(value, list)
                                                         else "")
                hits = PLACEHOLDER.findall(str(text or ""))
                hits += person.findall(str(text or "")) if person else []
                found += [f"{where}: {hit}" for hit in hits]
    return found


def held_out(bot_dir: Path) -> list[tuple[str, str]]:
    """(first customer question, conversation id) of each held-out conversation."""
    path = bot_dir / HELD_OUT
    parsed = parse(read_bytes(path), path)
    questions = [(first_question(c), c.id) for c in parsed.conversations]
    return [(q, cid) for q, cid in questions if q]


def learned_topics(bot_dir: Path, topics: dict[str, str]) -> dict[str, str]:
    """Entry id -> the majority topic of the conversations each accepted FAQ suggestion
    was mined from."""
    found: dict[str, str] = {}
    for path in sorted((bot_dir / "suggestions").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entry = (data.get("entry") or {}).get("id") if data.get("kind") == "faq" else None
        sources = [topics.get(c) for c in data.get("conversations") or []]
        votes = Counter(t for t in sources if t)
        if entry and votes:
            found[entry] = votes.most_common(1)[0][0]
    return found


def score(bot: BotDefinition, questions: list[tuple[str, str]], topics: dict[str, str],
          learned: dict[str, str]) -> dict[str, Any]:
    """Right / wrong / abstained shares of the held-out questions (``bot``'s artefacts)."""
    runtime = BotRuntime.load(bot)
    assert runtime.knowledge is not None
    entries = [p.id for p in runtime.knowledge.index.passages]
    cases = []
    for question, cid in questions:
        topic = topics[cid]
        expect = tuple(e for e in entries if learned.get(e, e) == topic) or (NONE,)
        cases.append(AnswerCase(cid, (question,), (expect,), topic))

    async def ask() -> list[Any]:
        try:
            return await ask_all(runtime, cases)
        finally:
            await runtime.close()

    replies = asyncio.run(ask())
    links = {i.name: i.faq for i in bot.config.intents if i.faq}
    summary = summarise(cases, replies, links)
    clarified = summary["clarified"]
    return {"right": summary["right"], "wrong": summary["wrong"],
            "abstained": round(summary["abstained"] + clarified, 4),
            "partial": summary["partial"], "errors": summary["errors"],
            "version": bot.version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--accept", choices=("all", "faq"), default="all",
                        help="accept every suggestion, or only FAQ entries and alternatives "
                        "(no intents)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    load_start = os.getloadavg()
    topics = {str(k): str(v) for k, v in yaml.safe_load(
        (args.bot / TOPICS).read_text(encoding="utf-8")).items()}
    with tempfile.TemporaryDirectory(prefix="supportbot-learning-") as tmp:
        work = Path(tmp) / args.bot.name
        shutil.copytree(args.bot, work, ignore=shutil.ignore_patterns(
            "sessions.sqlite3*", "conversations", "suggestions", "candidate", "backups"))
        questions = held_out(work)
        before = score(load_bot(work), questions, topics, {})
        print("before", {k: v for k, v in before.items() if k != "errors"}, flush=True)
        started = time.perf_counter()
        assert bot(["import", str(work), str(work / PAST)]) == 0
        assert bot(["suggest", str(work)]) == 0
        found = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")).get("kind")
                 for p in sorted((work / "suggestions").glob("*.yaml"))}
        kinds = Counter(found.values())
        wanted = [i for i, kind in found.items() if (args.accept == "all" and kind)
                  or kind in ("faq", "alternatives")]
        leaks = private_leaks(work / PAST, work / "suggestions")
        print(f"private leaks: {len(leaks)}", *leaks, sep="\n  ", flush=True)
        for suggestion in (["all"] if args.accept == "all" else wanted):
            assert bot(["suggest", str(work), "--accept", suggestion, "--force"]) == 0
        accepted = Counter(found[i] for i in wanted)
        mined_s = time.perf_counter() - started
        started = time.perf_counter()
        code = bot(["train", str(work)])
        train_s = time.perf_counter() - started
        learned = learned_topics(work, topics)
        trained = load_bot(work)
        if code != 0:  # refused by the gate: the candidate is measured all the same
            trained = dataclasses.replace(trained, artefacts=work / ".bot" / "candidate")
        gate = json.loads((trained.artefacts_dir / "version.json").read_text())
        after = score(trained, questions, topics, learned)
        print("after", {k: v for k, v in after.items() if k != "errors"}, flush=True)
    figures = {
        "before": {k: before[k] for k in ("right", "wrong", "abstained")},
        "after": {k: after[k] for k in ("right", "wrong", "abstained")},
        "n_heldout": len(questions),
        "promoted": code == 0,
        "round_trip_s": round(mined_s + train_s, 1),
        "private_leaks": len(leaks),
    }
    machine = {"cpus": os.cpu_count(), "load_average": load_start,
               "load_average_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")  # exactly the keys
    write_results(args.out.with_name(args.out.stem + "_details.json"), {
        **figures,
        "suggested": {"faq": kinds.get("faq", 0), "intents": kinds.get("intent", 0)},
        "accepted": {"faq": accepted.get("faq", 0), "intents": accepted.get("intent", 0),
                     "alternatives": accepted.get("alternatives", 0)},
        "train_seconds_added": round(train_s, 1),
        "import_suggest_accept_seconds": round(mined_s, 1),
        "gate": {k: gate.get(k) for k in ("reason", "refused", "explanation", "scores",
                                          "changed")},
        "learned_topics": learned,
        "errors": {"before": before["errors"], "after": after["errors"]},
        "command": "python -m benchmarks.learning " + " ".join(argv or sys.argv[1:]),
        "machine": machine,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
