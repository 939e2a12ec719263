"""`bot train DIR`: train what changed as a candidate version, measure it against the served
version and promote it when it is not worse (bot/versions/gate.py)."""

from __future__ import annotations

import argparse

from bot.build import StepResult
from bot.commands import bot_folder_argument, loaded_bot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("train", help="build the index and models the bot needs",
                            description="Train what changed into a candidate version; promote "
                            "it if it is not worse than the served version on the held-out "
                            "questions and conversation tests (versions.gate in bot.yaml). "
                            "Exit 1 when the candidate is refused.")
    bot_folder_argument(parser)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--no-gate", action="store_true",
                        help="promote the candidate even if it measures worse")
    parser.set_defaults(func=run)


def _print(result: StepResult) -> None:
    state = "built" if result.rebuilt else "up to date"
    print(f"{result.step}: {state} ({result.detail}, {result.seconds:.1f} s)", flush=True)
    for warning in result.warnings:  # a site's pages that could not be read
        print(f"warning: {warning}", flush=True)


def run(args: argparse.Namespace) -> int:
    from bot.versions.gate import train_version

    bot = loaded_bot(args)
    print(f"training {bot.config.name!r} into {bot.build_dir}", flush=True)
    outcome = train_version(bot, force=args.force, gate=not args.no_gate, progress=True,
                            report=_print)
    if outcome.served is not None and outcome.candidate is not None:
        print(f"served version {'before' if outcome.state == 'promoted' else 'now'}: "
              f"{outcome.served.line()}")
        print(f"candidate: {outcome.candidate.line()}")
    if outcome.state == "refused":
        print(f"candidate refused: {outcome.reason}; still serving version {outcome.version} "
              f"(the candidate is kept in {bot.shown(bot.build_dir / 'candidate')}; `bot "
              f"promote {bot.shown(bot.root)}` serves it anyway)")
        for line in outcome.explanation:
            print(line)
        return 1
    if outcome.state == "up to date":
        print(f"version {outcome.version} is up to date")
    else:
        print(f"version {outcome.version} promoted: {outcome.reason}")
    return 0
