"""`bot rollback DIR [N]`: serve an earlier version again (default: the one before)."""

from __future__ import annotations

import argparse

from bot.commands import bot_folder_argument, loaded_bot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rollback", help="serve an earlier trained version again",
                            description="Serve version N (default: the one before the served "
                            "one) and restore the bot files it was trained from; the files "
                            "this replaces are kept in .bot/backups/. A running `bot serve` "
                            "switches to it without a restart.")
    bot_folder_argument(parser)
    parser.add_argument("version", nargs="?", type=int, help="the version number")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.versions.store import rollback

    bot = loaded_bot(args)
    version, restored = rollback(bot, args.version)
    print(f"serving version {version.number}")
    if restored:
        print(f"restored {len(restored)} file(s) it was trained from: {', '.join(restored)} "
              f"(the replaced ones are in {bot.shown(bot.build_dir / 'backups')})")
    return 0
