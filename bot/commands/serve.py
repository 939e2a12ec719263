"""`bot serve DIR`: run the bot's HTTP server (web chat, REST and configured channels)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket

from aiohttp import web

from bot.commands import bot_folder_argument, loaded_bot
from bot.commands.engine import ensure_engine
from bot.definition.secrets import bot_secrets
from bot.errors import BotError
from bot.runtime import BotRuntime
from bot.server.app import create_app
from bot.server.logs import configure_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the bot over HTTP")
    bot_folder_argument(parser)
    parser.add_argument("--host", default=os.environ.get("BOT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BOT_PORT", "8080")))
    parser.add_argument("--log-format", choices=("text", "json"),
                        default=os.environ.get("BOT_LOG_FORMAT", "text"),
                        help="log lines as text or one JSON object per line (with request ids)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default=os.environ.get("BOT_LOG_LEVEL", "info"))
    parser.add_argument("--reuse-port", action="store_true",
                        help="let several `bot serve` processes share the port (SO_REUSEPORT)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = loaded_bot(args)
    level = logging.DEBUG if args.verbose else getattr(logging, args.log_level.upper())
    configure_logging(fmt=args.log_format, level=level, secrets=bot_secrets(bot.config),
                      pii=bot.config.security.redact_pii)
    if not args.reuse_port:
        check_port_free(args.host, args.port)  # before minutes of loading models
    ensure_engine(bot.config.model)  # after a plain `pip install`: built once, here
    runtime = BotRuntime.load(bot)  # fail fast, before binding the port
    print(f"{bot.config.name}: web chat on http://{args.host}:{args.port}/ , "
          f"REST on http://{args.host}:{args.port}/webhooks/rest", flush=True)
    try:
        web.run_app(create_app(bot, runtime=runtime), host=args.host, port=args.port,
                    print=None, access_log=None, reuse_port=args.reuse_port or None)
    except OSError as exc:  # taken in the meantime, or not ours to bind
        raise BotError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") \
            from exc
    return 0


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`BotError` in one line when ``host:port`` cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BotError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind(address)
        except OSError as exc:
            in_use = exc.errno == errno.EADDRINUSE
            raise BotError(f"port {port} on {host} is already in use: stop what is "
                           "listening there or choose another with --port" if in_use else
                           f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
