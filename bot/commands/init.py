"""`bot init DIR [--language CODE]`: scaffold a new bot folder from the template of that
language (``bot/templates/new_bot`` for English, ``new_bot_<code>`` for the others): its
``language:``, FAQ, greeting, fallback, clarifying question, web chat texts and the (commented)
handoff messages are written in that language."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from bot.commands import bot_folder, bot_folder_argument
from bot.errors import ConfigError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE = TEMPLATES / "new_bot"  # English
DEFAULT_LANGUAGE = "en"


def languages() -> list[str]:
    """The language codes `bot init --language` has a template for."""
    others = (p.name.removeprefix("new_bot_") for p in TEMPLATES.glob("new_bot_*")
              if p.is_dir())
    return sorted({DEFAULT_LANGUAGE, *others})


def template_for(language: str) -> Path:
    """The template folder of ``language``; a ConfigError naming the known codes if none."""
    if language not in languages():
        raise ConfigError(f"no bot template in {language!r}; bot init --language takes one "
                          f"of: {', '.join(languages())}", path="--language")
    return TEMPLATE if language == DEFAULT_LANGUAGE else TEMPLATES / f"new_bot_{language}"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("init", help="create a new bot folder")
    bot_folder_argument(parser, help="folder to create (must not exist or be empty)")
    parser.add_argument("--language", default=DEFAULT_LANGUAGE, metavar="CODE",
                        help=f"the bot's language: its FAQ's and messages' "
                             f"({', '.join(languages())}; default {DEFAULT_LANGUAGE})")
    parser.set_defaults(func=run)


def scaffold(directory: Path, language: str = DEFAULT_LANGUAGE) -> Path:
    """Copy the template of ``language`` into ``directory`` and name the bot after the
    folder."""
    template = template_for(language)
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError("folder is not empty; choose a new one", file=str(directory))
    shutil.copytree(template, directory, dirs_exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", directory.resolve().name).strip("_") or "my_bot"
    if not re.match(r"[A-Za-z_]", name):
        name = f"bot_{name}"
    definition = directory / "bot.yaml"
    definition.write_text(definition.read_text(encoding="utf-8").replace(
        "name: my_bot", f"name: {name}", 1), encoding="utf-8")
    return definition


def run(args: argparse.Namespace) -> int:
    definition = scaffold(bot_folder(args), args.language)
    print(f"created {definition}; next: bot train {args.directory} && bot serve {args.directory}")
    if args.language != DEFAULT_LANGUAGE:
        print('its multilingual embedder and language identifier need: '
              'pip install "supportbot[multilingual]"')
    return 0
