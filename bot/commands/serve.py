"""`bot serve DIR`: run the bot's HTTP server (web chat, REST and configured channels)."""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from bot.config import load_bot
from bot.runtime import BotRuntime
from bot.server import create_app


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the bot over HTTP")
    parser.add_argument("directory", help="the bot folder")
    parser.add_argument("--host", default=os.environ.get("BOT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BOT_PORT", "8080")))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = load_bot(args.directory)
    runtime = BotRuntime.load(bot)  # fail fast, before binding the port
    print(f"{bot.config.name}: web chat on http://{args.host}:{args.port}/ , "
          f"REST on http://{args.host}:{args.port}/webhooks/rest", flush=True)
    web.run_app(create_app(bot, runtime=runtime), host=args.host, port=args.port,
                print=None)
    return 0
