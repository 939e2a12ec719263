"""`bot stats DIR`: usage statistics from the session store's events, as text and plots."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bot.commands import bot_folder_argument, loaded_bot
from bot.evaluation.stats import Stats, collect, plot, summary
from bot.sessions.factory import open_session_store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stats", help="turns, intents, fallback rate and satisfaction")
    bot_folder_argument(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for summary.txt and the PNG plots (default: DIR/.bot/stats)")
    parser.add_argument("--days", type=float, default=None, help="only the last N days")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = loaded_bot(args)
    since = time.time() - args.days * 86400 if args.days else 0.0

    async def read() -> Stats:
        store = open_session_store(bot)
        try:
            return await collect(store, since=since)
        finally:
            await store.close()

    stats = asyncio.run(read())
    out = args.out or bot.build_dir / "stats"
    name = bot.config.name
    text = summary(stats, name)
    files = plot(stats, out, name)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    print("wrote " + ", ".join(str(f) for f in [out / "summary.txt", *files]))
    return 0
