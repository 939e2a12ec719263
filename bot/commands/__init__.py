"""Sub-commands of the ``bot`` CLI. Each module has ``register(subparsers)``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.definition.config import BotDefinition
from bot.definition.loader import load_bot

BOT_FOLDER_HELP = "the bot folder"


def bot_folder_argument(parser: argparse.ArgumentParser, help: str = BOT_FOLDER_HELP) -> None:
    """The bot folder, the first argument of the commands about one bot (``DIR``)."""
    parser.add_argument("directory", help=help)


def bot_folder(args: argparse.Namespace) -> Path:
    """The bot folder the command was given, as given (not loaded)."""
    return Path(args.directory)


def loaded_bot(args: argparse.Namespace) -> BotDefinition:
    """The bot in the folder the command was given, loaded and checked (``ConfigError``)."""
    return load_bot(args.directory)
