"""`bot versions DIR`: the trained versions of a bot, their scores, and which is served."""

from __future__ import annotations

import argparse

from bot.commands import bot_folder_argument, loaded_bot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("versions", help="list the trained versions and their scores")
    bot_folder_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.versions.store import Scores, list_versions, refused_candidate

    bot = loaded_bot(args)
    versions = list_versions(bot)
    refused = refused_candidate(bot)
    if not versions:
        print("no versions yet: `bot train` makes the first")
        return 0
    for version in versions:
        info = version.info
        mark = "*" if version.current else " "
        scores = version.scores
        measured = scores.line() if scores else "not measured"
        changed = ", ".join(info.get("changed") or []) or "nothing"
        print(f"{mark} {version.number:>3}  {info.get('created', '?')}  {measured}")
        print(f"        trained: {changed}; {info.get('reason', '')}")
    if refused is not None:
        scores = refused.get("scores")
        print(f"  refused candidate  {refused.get('created', '?')}  "
              f"{Scores.from_dict(scores).line() if scores else 'not measured'}")
        print(f"        refused: {refused['refused']}")
        for line in refused.get("explanation") or []:
            print(f"        {line}")
        if not refused.get("explanation"):
            print(f"        `bot promote {bot.shown(bot.root)}` serves it anyway")
    print("* = served")
    return 0
