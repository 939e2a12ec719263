"""`bot export DIR`: write rated replies (thumbs up/down) as JSONL chat training data."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.commands import bot_folder_argument, loaded_bot
from bot.definition.config import BUILD_DIR

DEFAULT_OUT = f"{BUILD_DIR}/training/feedback.jsonl"  # a build folder, never committed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("export", help="export rated conversations as training data",
                            description="Write every rated reply (the latest rating of each) "
                            "with the conversation up to it as one JSON line: "
                            '{"messages": [{"role", "content"}...], "rating", "comment", ...}.')
    bot_folder_argument(parser)
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help=f"where to write (default: <bot>/{DEFAULT_OUT})")
    parser.add_argument("--rating", choices=("up", "down"), help="only this rating")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.server.feedback import export_feedback
    from bot.sessions.factory import open_session_store

    bot = loaded_bot(args)
    out: Path = args.out or bot.root / DEFAULT_OUT
    store = open_session_store(bot)

    async def main() -> int:
        try:
            return await export_feedback(store, out, rating=args.rating)
        finally:
            await store.close()

    count = asyncio.run(main())
    print(f"wrote {count} rated replies to {out}")
    return 0
