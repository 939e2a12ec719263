"""`bot init DIR`: scaffold a new bot folder from the template."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from bot.commands import bot_folder, bot_folder_argument
from bot.errors import ConfigError

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "new_bot"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("init", help="create a new bot folder")
    bot_folder_argument(parser, help="folder to create (must not exist or be empty)")
    parser.set_defaults(func=run)


def scaffold(directory: Path) -> Path:
    """Copy the template into ``directory`` and name the bot after the folder."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError("folder is not empty; choose a new one", file=str(directory))
    shutil.copytree(TEMPLATE, directory, dirs_exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", directory.resolve().name).strip("_") or "my_bot"
    if not re.match(r"[A-Za-z_]", name):
        name = f"bot_{name}"
    definition = directory / "bot.yaml"
    definition.write_text(definition.read_text().replace("name: my_bot", f"name: {name}", 1))
    return definition


def run(args: argparse.Namespace) -> int:
    definition = scaffold(bot_folder(args))
    print(f"created {definition}; next: bot train {args.directory} && bot serve {args.directory}")
    return 0
