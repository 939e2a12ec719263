"""The aiohttp application: health, web chat page and the bot's channels."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.definition.config import BotDefinition
from bot.definition.secrets import bot_secrets
from bot.errors import BadRequest, BotError, Forbidden, SessionError, StoreUnavailable, TurnTimeout
from bot.runtime import BotRuntime
from bot.server.agent_api import AgentDesk
from bot.server.callers import SENDER_IDS
from bot.server.desk import install_desk
from bot.server.feedback import FeedbackRoute
from bot.server.lead import install_lead
from bot.server.logs import RedactingFilter, request_context_middleware
from bot.server.metrics import install_metrics
from bot.server.pipeline import PIPELINE, TurnPipeline
from bot.server.reload import VersionFollower
from bot.server.security import LIMITER, install_security, security_middleware
from bot.server.visitor_api import VisitorRoutes
from bot.sessions.keys import SenderIds, server_secret
from channels.cors import cors_middleware, granted_cors_headers
from channels.http import API_TOKENS, MESSAGE_LIMIT
from channels.registry import (
    CHANNELS,
    Channel,
    can_push,
    channel_class,
    channel_settings,
    install_channels,
)
from channels.visitors import VISITOR_TOKENS, VisitorTokens
from foundation.messages import BotReply, ReplyStream, UserMessage
from foundation.settings import Where
from retrieval.embedder import Embedder
from retrieval.index import Hit
from retrieval.passages import Passage

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent.parent / "static"
RUNTIME: web.AppKey[BotRuntime] = web.AppKey("runtime", BotRuntime)
MASKER: web.AppKey[RedactingFilter] = web.AppKey("masker", RedactingFilter)
BODY_LIMIT = 64 * 1024  # the default of server.max_body_bytes
STORE_RETRY_S = 5  # Retry-After while the session store is unavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def masked(request: web.Request, text: str) -> str:
    """``text`` with the bot's secrets masked, for a response."""
    masker = request.app.get(MASKER)
    return masker.mask(text) if masker is not None else text


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into JSON responses with a clear message. It wraps every middleware but
    the request-id one (which reads nothing but a checked header), so CORS, rate limits and
    handlers are all inside it; an error response keeps the CORS headers CORS granted."""
    try:
        return await handler(request)
    except (asyncio.CancelledError, web.HTTPException) as exc:
        if not isinstance(exc, web.HTTPRequestEntityTooLarge):
            raise
        response = error_response(413, "request body too large "
                                  f"(limit {request.client_max_size} bytes)")
    except Exception as exc:
        response = _error_response(request, exc)
    response.headers.update(granted_cors_headers(request))
    return response


def _error_response(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, BadRequest):
        return error_response(400, str(exc))
    if isinstance(exc, Forbidden):
        return error_response(403, str(exc))
    if isinstance(exc, TurnTimeout):
        return error_response(504, str(exc))
    if isinstance(exc, StoreUnavailable):  # an outage: one line, no traceback; clients retry
        log.warning("turn refused, session store unavailable: %s", exc)
        return web.json_response({"error": "the bot is temporarily unavailable; retry "
                                  f"in {STORE_RETRY_S} s"}, status=503,
                                 headers={"Retry-After": str(STORE_RETRY_S)})
    if isinstance(exc, BotError):
        log.exception("request failed")
        return error_response(500, masked(request, str(exc)))
    log.exception("request failed unexpectedly")  # a bug: never aiohttp's text page
    return error_response(500, "internal error; the server log has the details")


async def health(request: web.Request) -> web.Response:
    """200 with the bot's state; 503 while the session store cannot be reached."""
    runtime = request.app[PIPELINE].runtime  # the served version's
    knowledge = runtime.knowledge
    store, status = "ok", 200
    try:
        await runtime.store.ping()
    except SessionError as exc:
        store, status = masked(request, str(exc)), 503
    return web.json_response({
        "status": "ok" if status == 200 else "unavailable",
        "bot": runtime.bot.config.name,
        "store": store,
        "faq_passages": len(knowledge.index) if knowledge else 0,
        "version": runtime.bot.version,
    }, status=status, headers={"Retry-After": str(STORE_RETRY_S)} if status != 200 else None)


async def index_page(request: web.Request) -> web.Response:
    """The bot's own page: the web chat widget, full page (one look, greeting, streaming and
    handoff state with the widget other sites embed)."""
    config = request.app[RUNTIME].bot.config
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    html = html.replace("{{title}}", _escape(f"{config.persona.name} · {config.name}"))
    chat = '<script src="webchat/widget.js" data-mode="page"></script>' \
        if "webchat" in config.channels else \
        '<p class="off">Chat on this page needs the web chat channel: add <code>webchat: {}' \
        '</code> under <code>channels:</code> in bot.yaml.</p>'
    return web.Response(text=html.replace("{{chat}}", chat), content_type="text/html")


WIDGET_PARTS = ("widget-text.js", "widget-session.js", "widget.js")  # one script, in order
WIDGET_CACHE = {"Cache-Control": "public, max-age=300"}


@functools.cache
def widget_script() -> str:
    """The widget's parts joined in one function: one script, no globals on the host page."""
    parts = [(STATIC / name).read_text(encoding="utf-8") for name in WIDGET_PARTS]
    return "(function () {\n" + "\n".join(parts) + "\n})();\n"


async def widget_file(request: web.Request) -> web.StreamResponse:
    """The web chat widget and its style (docs/channels.md); any site may load them."""
    name = request.match_info["name"]
    if name == "widget.js":
        return web.Response(text=widget_script(), content_type="text/javascript",
                            headers=WIDGET_CACHE)
    if name != "widget.css":
        raise web.HTTPNotFound(text='{"error": "no such widget file"}',
                               content_type="application/json")
    return web.FileResponse(STATIC / name, headers=WIDGET_CACHE)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def served_passages(app: web.Application) -> dict[str, Passage]:
    """The served version's FAQ passages by id (the desk names what answers cited)."""
    knowledge = app[PIPELINE].runtime.knowledge
    return {p.id: p for p in knowledge.index.passages} if knowledge else {}


def served_embedder(app: web.Application) -> Embedder | None:
    """The served version's embedder (the dashboard groups unanswered questions with it)."""
    knowledge = app[PIPELINE].runtime.knowledge
    return knowledge.embedder if knowledge else None


def served_search(app: web.Application, text: str, k: int) -> list[Hit]:
    """The served version's FAQ passages nearest ``text`` (agent assist; blocking)."""
    knowledge = app[PIPELINE].runtime.knowledge
    return knowledge.search(text, k) if knowledge else []


async def push_reply(app: web.Application, channel: str, sender: str, reply: BotReply) -> bool:
    """Deliver an agent's message through the channel's ``push``; False if it has none."""
    push = can_push(app[CHANNELS].get(channel))
    if push is None:
        return False
    await push(sender, reply)
    return True


def create_app(bot: BotDefinition, *, runtime: BotRuntime | None = None) -> web.Application:
    """Build the app for ``bot``; the runtime (models, index, sessions) loads on startup."""
    app = web.Application(
        middlewares=[request_context_middleware, errors_middleware, cors_middleware,
                     security_middleware],
        client_max_size=bot.config.server.max_body_bytes)
    app[MESSAGE_LIMIT] = bot.config.server.max_message_chars  # for channels that check early
    app[MASKER] = RedactingFilter(bot_secrets(bot.config))  # no secrets in error messages
    app[API_TOKENS] = bot.config.security.api_tokens  # server-to-server callers (rest channel)
    secret = server_secret(bot)
    app[VISITOR_TOKENS] = VisitorTokens(  # browser sessions (channels/visitors.py)
        secret, ttl_s=bot.config.security.session_ttl_hours * 3600)
    app[SENDER_IDS] = SenderIds(secret, mode=bot.config.sessions.hash_senders)
    metrics = install_metrics(app, bot.config)  # GET /metrics
    install_security(app, bot.config,  # tokens, rate limiter (bot/server/security.py)
                     on_limited=lambda scope: metrics.rate_limited.labels(metrics.bot,
                                                                          scope).inc())

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[RUNTIME] = runtime or await BotRuntime.aload(bot)
        app[PIPELINE] = TurnPipeline(app[RUNTIME], limiter=app[LIMITER], metrics=metrics,
                                     senders=app[SENDER_IDS])
        follower = VersionFollower(bot, app[PIPELINE])  # `bot train` / `bot rollback`
        following = asyncio.create_task(follower.run())
        yield
        following.cancel()
        await follower.close()
        await app[RUNTIME].store.close()

    app.cleanup_ctx.append(lifecycle)

    agents = AgentDesk(bot.config, lambda: app[RUNTIME].store)  # /agent, REST outbox
    passages = functools.partial(served_passages, app)
    desk = install_desk(app, agents, passages, functools.partial(served_search, app),
                        functools.partial(push_reply, app))  # /desk
    agents.install(app, deliver=desk.deliver)  # here, or through another worker (Redis)
    install_lead(app, bot, lambda: app[RUNTIME].store, functools.partial(served_passages, app),
                 functools.partial(served_embedder, app))  # /desk/review, /desk/dashboard

    def on_stream(message: UserMessage) -> ReplyStream:  # the desk hears of handed-off turns
        sender = app[SENDER_IDS].stored(message.channel, message.sender)
        return desk.watch(f"{message.channel}:{sender}", app[PIPELINE].stream(message))

    async def on_message(message: UserMessage) -> BotReply:
        return await on_stream(message).result()

    routes: list[web.AbstractRouteDef] = [web.get("/health", health), web.get("/", index_page)]
    where = Where(str(bot.file), "channels")
    channels: dict[str, Channel] = {}
    for name, raw in bot.config.channels.items():
        settings = channel_settings(name, raw, where.key(bot.config.channels, name))
        channel = channel_class(name)(settings, on_message=on_message, on_stream=on_stream)
        routes.extend(channel.routes(f"/webhooks/{name}"))
        channels[name] = channel
    install_channels(app, channels, cors_origins=bot.config.server.cors_origins)  # CORS, close
    routes.append(web.get("/webchat/{name}", widget_file))  # the embeddable widget
    FeedbackRoute(lambda: app[RUNTIME].store,  # POST /webhooks/rest/feedback
                  bot.config.channels).install(app)
    if "webchat" in bot.config.channels:  # the widget's history and "end chat"
        VisitorRoutes(agents, desk, passages).install(app)
    app.add_routes(routes)
    return app
