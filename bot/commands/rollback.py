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
    if restored.written:
        print(f"restored {len(restored.written)} file(s) as version {version.number} had them: "
              f"{', '.join(restored.written)}")
    if restored.removed:
        print(f"removed {len(restored.removed)} file(s) version {version.number} did not have: "
              f"{', '.join(restored.removed)}")
    if restored.backup is not None:
        print(f"the files replaced or removed are kept in {bot.shown(restored.backup)}")
    if not restored.written and not restored.removed:
        print("the bot's files are already those it was trained from")
    return 0
