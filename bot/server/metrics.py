"""Prometheus metrics, one :class:`CollectorRegistry` per app (no global registry).

``GET /metrics`` serves them. Model code reports its time with :func:`model_timer` (or
:func:`observe_model_time`): during a turn the app's metrics are in a context variable, which
``asyncio.to_thread`` carries into worker threads. A batching queue that runs a model for many
turns captures :func:`current_metrics` when a request is queued and reports to that object.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from bot.definition.config import BotConfig
from channels.http import check_token

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_CURRENT: ContextVar[BotMetrics | None] = ContextVar("bot_metrics", default=None)


class BotMetrics:
    """The metrics of one served bot."""

    def __init__(self, bot: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, b = self.registry, ["bot"]
        self.bot = bot
        self.turns = Counter("supportbot_turns", "Turns answered", [*b, "channel", "kind"],
                             registry=r)
        self.turn_seconds = Histogram("supportbot_turn_seconds", "Turn latency", [*b, "channel"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.fallbacks = Counter("supportbot_fallbacks", "Fallback replies", [*b, "channel"],
                                 registry=r)
        self.handoffs = Counter("supportbot_handoffs", "Turns handed to a human",
                                [*b, "channel"], registry=r)
        self.model_seconds = Histogram("supportbot_model_seconds", "Time spent in models",
                                       [*b, "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("supportbot_turn_errors", "Turns that failed", [*b, "error"],
                              registry=r)
        self.guarded = Counter("supportbot_guard_actions", "Injection and reply-guard actions",
                               [*b, "action"], registry=r)
        self.rate_limited = Counter("supportbot_rate_limited", "Requests over a rate limit",
                                    [*b, "scope"], registry=r)
        self.http = Counter("supportbot_http_requests", "HTTP requests",
                            [*b, "method", "route", "status"], registry=r)
        self.http_seconds = Histogram("supportbot_http_request_seconds", "HTTP latency",
                                      [*b, "route"], buckets=LATENCY_BUCKETS, registry=r)

    def observe_turn(self, *, channel: str, kind: str, seconds: float, handoff: bool) -> None:
        self.turns.labels(self.bot, channel, kind).inc()
        self.turn_seconds.labels(self.bot, channel).observe(seconds)
        if kind == "fallback":
            self.fallbacks.labels(self.bot, channel).inc()
        if handoff:
            self.handoffs.labels(self.bot, channel).inc()

    def observe_model(self, model: str, seconds: float) -> None:
        self.model_seconds.labels(self.bot, model).observe(seconds)

    def observe_http(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(self.bot, method, route, str(status)).inc()
        self.http_seconds.labels(self.bot, route).observe(seconds)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make these the metrics :func:`model_timer` reports to, in this context."""
        token = _CURRENT.set(self)
        try:
            yield
        finally:
            _CURRENT.reset(token)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def current_metrics() -> BotMetrics | None:
    """The metrics of the turn running in this context, if any."""
    return _CURRENT.get()


def observe_model_time(model: str, seconds: float) -> None:
    """Report ``seconds`` spent in ``model`` to the current turn's metrics (if any)."""
    metrics = _CURRENT.get()
    if metrics is not None:
        metrics.observe_model(model, seconds)


@contextmanager
def model_timer(model: str) -> Iterator[None]:
    """``with model_timer("generation"): ...`` times a model call for ``/metrics``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_model_time(model, time.perf_counter() - started)


METRICS: web.AppKey[BotMetrics] = web.AppKey("metrics", BotMetrics)


def install_metrics(app: web.Application, config: BotConfig) -> BotMetrics:
    """Create the app's metrics and serve them on ``GET /metrics``."""
    metrics = app[METRICS] = BotMetrics(config.name)
    guarded = config.security.metrics_require_token

    async def handler(request: web.Request) -> web.Response:
        if guarded:
            check_token(request, config.security.api_tokens)
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", handler)
    return metrics
