"""`bot validate DIR`: check a bot definition and its FAQ files without training."""

from __future__ import annotations

import argparse

from bot.commands import bot_folder_argument, loaded_bot
from bot.errors import library_errors
from retrieval.audience import agent_instructions
from retrieval.knowledge import load_passages


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check bot.yaml and the files it references")
    bot_folder_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = loaded_bot(args)
    config = bot.config
    with library_errors():
        passages = load_passages(bot.faq_sources(), config.faq) if config.faq else []
    for name in bot.uncovered_faq_files():
        print(f"warning: {name} is in an FAQ folder but no faq.sources entry reads it "
              "(add a pattern for it, or list the folder itself)")
    for passage, words in agent_instructions(passages):
        print(f"warning: {passage.source}: {passage.id!r} reads like an instruction to an "
              f"agent ({words!r}); customers would be shown it as written: list its file in "
              "faq.agent_sources, or rewrite it for customers")
    print(f"{bot.file}: ok — bot {config.name!r}, {len(config.intents)} intents, "
          f"{len(config.responses)} responses, {len(passages)} FAQ passages, "
          f"channels: {', '.join(config.channels) or 'none'}")
    return 0
