"""The ``bot`` command line: one module per sub-command under ``bot/commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Idle OpenMP threads sleep instead of spinning, so model work in worker threads does not
# starve the event loop and the other workers on the same cores. Must precede importing torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bot.errors import BotError, library_errors

COMMANDS = ("init", "validate", "train", "serve", "shell", "stats", "eval", "test", "export",
            "engine", "import", "versions", "promote", "rollback", "suggest")
MODULES = {"import": "import_conversations"}  # commands whose name is a Python keyword


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot", description="Build, run and test support bots.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"bot.commands.{MODULES.get(name, name)}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with library_errors():
            code: int = args.func(args)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
