"""The aiohttp application: health, web chat page and the bot's channels."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.config import BotDefinition
from bot.errors import BadRequest, BotError, TurnTimeout
from bot.messages import BotReply, UserMessage
from bot.runtime import BotRuntime
from bot.schema import Where
from channels.registry import channel_class, channel_settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
RUNTIME: web.AppKey[BotRuntime] = web.AppKey("runtime", BotRuntime)
BODY_LIMIT = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn framework errors into JSON responses with a clear message."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except TurnTimeout as exc:
        return error_response(504, str(exc))
    except BotError as exc:
        log.exception("request failed")
        return error_response(500, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body too large (limit {BODY_LIMIT} bytes)")


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    knowledge = runtime.knowledge
    return web.json_response({
        "status": "ok",
        "bot": runtime.bot.config.name,
        "faq_passages": len(knowledge.index) if knowledge else 0,
    })


async def index_page(request: web.Request) -> web.Response:
    config = request.app[RUNTIME].bot.config
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{title}}", _escape(f"{config.persona.name} · {config.name}"))
    html = html.replace("{{greeting}}", _escape(config.persona.greeting))
    return web.Response(text=html, content_type="text/html")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def create_app(bot: BotDefinition, *, runtime: BotRuntime | None = None) -> web.Application:
    """Build the app for ``bot``; the runtime (models, index, sessions) loads on startup."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=BODY_LIMIT)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[RUNTIME] = runtime or await BotRuntime.aload(bot)
        yield
        await app[RUNTIME].close()

    app.cleanup_ctx.append(lifecycle)

    async def on_message(message: UserMessage) -> BotReply:
        return await app[RUNTIME].dialogue.handle(message)

    def on_stream(message: UserMessage) -> AsyncIterator[str | BotReply]:
        return app[RUNTIME].dialogue.stream(message)

    routes: list[web.AbstractRouteDef] = [web.get("/health", health), web.get("/", index_page)]
    where = Where(str(bot.file), "channels")
    for name, raw in bot.config.channels.items():
        settings = channel_settings(name, raw, where.key(bot.config.channels, name))
        channel = channel_class(name)(settings, on_message=on_message, on_stream=on_stream)
        routes.extend(channel.routes(f"/webhooks/{name}"))
    app.add_routes(routes)
    return app
