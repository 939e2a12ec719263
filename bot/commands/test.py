"""`bot test DIR`: run the conversation tests in DIR/tests/*.yaml against the real bot."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bot.commands import bot_folder_argument, loaded_bot

if TYPE_CHECKING:
    from bot.evaluation.conversations import TestReport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("test", help="run the bot's conversation tests",
                            description="Run YAML test conversations (user says X -> expect "
                            "intent, reply text, citations, slots, handoff) against the "
                            "trained bot with a fresh session store; exit 1 on failure.")
    bot_folder_argument(parser)
    parser.add_argument("--tests", type=Path, metavar="DIR",
                        help="where the test files are (default: <bot>/tests)")
    parser.add_argument("-k", "--filter", metavar="TEXT",
                        help="only conversations whose name or file contains TEXT")
    parser.add_argument("--no-train", action="store_true",
                        help="fail instead of training what is missing or stale")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.evaluation.conversations import isolated, load_conversations, run_conversations
    from bot.runtime import BotRuntime
    from bot.versions.store import trained_copy

    bot = loaded_bot(args)
    conversations = load_conversations(args.tests or bot.root / "tests")
    if args.filter:
        wanted = args.filter.lower()
        conversations = [c for c in conversations
                         if wanted in c.name.lower() or wanted in c.file.lower()]
    if not args.no_train:
        bot = trained_copy(bot)  # a promoted version is never retrained in place
    with tempfile.TemporaryDirectory(prefix="bot-test-") as tmp:
        runtime = BotRuntime.load(isolated(bot, Path(tmp)))

        async def main() -> TestReport:
            try:
                return await run_conversations(runtime, conversations)
            finally:
                await runtime.close()

        report = asyncio.run(main())
    print(report.format())
    return 1 if report.failed else 0
