"""Count the embedding and FAISS work one turn does: FAQ turns and follow-up turns.

Run (after `.venv/bin/bot train example_bots/acme_bank`; the FAQ path needs only the index
and the classifiers):
    .venv/bin/python benchmarks/turn_work.py                       # this checkout
    .venv/bin/python benchmarks/turn_work.py --checkout ../before  # another checkout's code

In-process, on a copy of the trained bot with generation off: every held-out FAQ paraphrase
as the first message of a new session ("FAQ turn"), then a few two-message conversations
whose second message is a short follow-up ("follow-up turn", counted alone). Per turn it
counts ``embed()`` calls, texts the sentence-embedding models actually encode (the embedder
caches recent queries) and FAISS searches. With ``--checkout`` the bot's code is imported from
that folder, so two versions can be compared with one script. Results go to
``benchmarks/results/turn_work.json`` (``--label`` names the row; rows of other labels are
kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "turn_work.json"

FOLLOW_UPS = [  # (question, follow-up): written for this count, not tuned on
    ("how do I send money abroad?", "how long does that take?"),
    ("my card has not arrived", "and if it never comes?"),
    ("can I freeze my card?", "how do I undo it?"),
    ("how do I change my PIN?", "can I do it at an ATM?"),
    ("what are the fees for an international transfer?", "and for a euro one?"),
    ("how do I open a savings account?", "is there a minimum for it?"),
]


def paraphrases(bot: Path) -> list[str]:
    items = yaml.safe_load((bot / "eval" / "faq_paraphrases.yaml").read_text(encoding="utf-8"))
    return [q for item in items for q in item["questions"]]


class Counting:
    """Counts embedder and index calls by wrapping the classes' methods."""

    def __init__(self) -> None:
        from retrieval.embedder import SentenceEmbedder
        from retrieval.index import FaqIndex

        self.counts: Counter[str] = Counter()
        embed, encode, search = (SentenceEmbedder.embed, SentenceEmbedder._encode,
                                 FaqIndex.search_vector)
        counts = self.counts

        def counted_embed(self: Any, texts: list[str], **kw: Any) -> Any:
            counts["embed_calls"] += 1
            return embed(self, texts, **kw)

        def counted_encode(self: Any, texts: list[str], **kw: Any) -> Any:
            counts["texts_encoded"] += len(texts)
            return encode(self, texts, **kw)

        def counted_search(self: Any, query: Any, k: int) -> Any:
            counts["faiss_searches"] += 1
            return search(self, query, k)

        SentenceEmbedder.embed = counted_embed  # type: ignore[method-assign]
        SentenceEmbedder._encode = counted_encode  # type: ignore[method-assign]
        FaqIndex.search_vector = counted_search  # type: ignore[method-assign]

    def take(self) -> dict[str, int]:
        taken = dict(self.counts)
        self.counts.clear()
        return {k: taken.get(k, 0) for k in ("embed_calls", "texts_encoded", "faiss_searches")}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("embed_calls", "texts_encoded", "faiss_searches")
    return {"turns": len(rows), "kinds": dict(Counter(r["kind"] for r in rows)),
            **{f"mean_{k}": round(statistics.mean(r[k] for r in rows), 2) for k in keys},
            **{f"max_{k}": max(r[k] for r in rows) for k in keys}}


async def run(bot: Path) -> dict[str, Any]:
    from bot.definition.loader import load_bot
    from bot.runtime import BotRuntime
    from foundation.messages import UserMessage

    counting = Counting()
    runtime = BotRuntime.load(load_bot(bot))
    try:
        await runtime.dialogue.handle(UserMessage("warmup", "hello"))
        counting.take()
        faq_turns = []
        for n, text in enumerate(paraphrases(bot)):
            reply = await runtime.dialogue.handle(UserMessage(f"faq-{n}", text))
            faq_turns.append({"text": text, "kind": reply.kind, **counting.take()})
        follow_ups = []
        for n, (question, follow_up) in enumerate(FOLLOW_UPS):
            await runtime.dialogue.handle(UserMessage(f"follow-{n}", question))
            counting.take()
            reply = await runtime.dialogue.handle(UserMessage(f"follow-{n}", follow_up))
            follow_ups.append({"text": follow_up, "kind": reply.kind, **counting.take()})
    finally:
        await runtime.close()
    answered = [t for t in faq_turns if t["kind"] == "faq"]
    return {"faq_turns": summary(answered), "all_first_turns": summary(faq_turns),
            "follow_up_turns": summary(follow_ups), "follow_up_detail": follow_ups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="import the bot's code from this checkout")
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    bot = args.bot.resolve()
    from bot.definition.loader import load_bot

    if not (load_bot(bot).index_dir / "manifest.json").is_file():  # the served version's
        raise SystemExit(f"{bot} is not trained: run `bot train {args.bot}` first")
    with tempfile.TemporaryDirectory(prefix="supportbot-work-") as tmp:
        copy = Path(tmp) / bot.name
        shutil.copytree(bot, copy, ignore=shutil.ignore_patterns("sessions.sqlite3*"))
        config_file = copy / "bot.yaml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        config["model"] = {**(config.get("model") or {}), "generation": False}
        config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        result = asyncio.run(run(copy))
    commit = subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    row = {"label": args.label, "commit": commit, "command":
           "python benchmarks/turn_work.py " + " ".join(sys.argv[1:]), **result}
    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    rows = [r for r in rows if r.get("label") != args.label] + [row]
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    for name in ("faq_turns", "follow_up_turns"):
        s = result[name]
        print(f"{args.label:>14} {name:>16}: {s['turns']} turns, embed calls "
              f"{s['mean_embed_calls']}, texts encoded {s['mean_texts_encoded']}, "
              f"FAISS searches {s['mean_faiss_searches']} (max {s['max_faiss_searches']})")


if __name__ == "__main__":
    main()
