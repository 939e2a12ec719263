"""`bot import DIR FILE...`: store past conversations in the bot folder, redacted."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.commands import bot_folder, bot_folder_argument
from bot.definition.config import typed_path
from bot.definition.loader import bot_file
from bot.learning.formats import FORMATS
from bot.learning.importer import FileReport, import_files


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "import", help="import past conversations (JSON lines, CSV, Chatwoot, Zendesk)",
        description="Read past conversations, mask personal data, drop system messages, "
        "private notes and duplicates, and store them under DIR/conversations/ with where "
        "each came from. Every file is checked before anything is written.")
    bot_folder_argument(parser)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="conversation files (.jsonl, .json or .csv)")
    parser.add_argument("--format", choices=FORMATS,
                        help="the files' format (default: told from their content)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = bot_file(bot_folder(args)).parent
    report = import_files(root, args.files, format=args.format)
    for file in report.files:
        print(summary(file))
    return 0


def summary(file: FileReport) -> str:
    """One line for a file (two when messages or conversations were dropped)."""
    if file.stored is None:
        return f"skipped {file.path}: {file.skipped}"
    c = file.counts
    line = (f"imported {_count(c.conversations, 'conversation')} "
            f"({_count(c.messages, 'message')}) from {file.path} ({file.format}): "
            f"{_count(c.duplicates, 'duplicate')}, {c.bot_only:,} bot-only kept, "
            f"{_count(c.redacted, 'personal data item')} redacted -> "
            f"{typed_path(file.stored)}")
    dropped = [_count(n, what) for n, what in (
        (c.empty, "empty message"), (c.non_chat, "system or activity message"),
        (c.private, "private note"), (c.repeated, "repeated message"),
        (c.no_customer, "conversation without a customer message")) if n]
    return line + ("\n  dropped " + ", ".join(dropped) if dropped else "")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
