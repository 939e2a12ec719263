"""`bot train DIR`: build the FAQ index and models, skipping what is up to date."""

from __future__ import annotations

import argparse

from bot.build import StepResult, train
from bot.definition.loader import load_bot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("train", help="build the index and models the bot needs")
    parser.add_argument("directory", help="the bot folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.set_defaults(func=run)


def _print(result: StepResult) -> None:
    state = "built" if result.rebuilt else "up to date"
    print(f"{result.step}: {state} ({result.detail}, {result.seconds:.1f} s)", flush=True)


def run(args: argparse.Namespace) -> int:
    bot = load_bot(args.directory)
    print(f"training {bot.config.name!r} into {bot.build_dir}", flush=True)
    train(bot, force=args.force, progress=True, report=_print)
    return 0
