"""`bot promote DIR`: serve the candidate the gate refused, on purpose."""

from __future__ import annotations

import argparse

from bot.commands import bot_folder_argument, loaded_bot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("promote", help="serve the candidate the gate refused, on purpose",
                            description="Promote the candidate `bot train` refused (kept in "
                            ".bot/candidate) as the next version, without training again, "
                            "when the bot's files and the served version are still those it "
                            "was measured with. `bot rollback` undoes it.")
    bot_folder_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.versions.store import promote_refused

    bot = loaded_bot(args)
    number = promote_refused(bot)
    print(f"version {number} promoted by hand over the gate's refusal; `bot rollback "
          f"{bot.shown(bot.root)}` serves the one before again")
    return 0
