"""Logging for a served bot: request ids, JSON lines, and no secrets or PII in the logs.

:func:`request_context_middleware` gives every request an id (the caller's ``X-Request-Id``
when it is sane, else a new one), keeps it in a context variable for the log records of that
request, returns it in the response header, and writes one access-log line.
:func:`configure_logging` installs a root handler (text or JSON) with a
:class:`RedactingFilter` that masks :class:`~bot.definition.schema.Secret` values,
configured secrets and, when asked, personal data.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Literal

from aiohttp import web

from bot.server.metrics import METRICS
from bot.sessions.redaction import redact
from foundation.settings import Secret

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MASK = "***"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
access_log = logging.getLogger("bot.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context_middleware(request: web.Request,
                                     handler: Handler) -> web.StreamResponse:
    """Request id, access log line and HTTP metrics for every request."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    started, status = time.perf_counter(), 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        seconds = time.perf_counter() - started
        route = _route_name(request)
        metrics = request.config_dict.get(METRICS)
        if metrics is not None:
            metrics.observe_http(method=request.method, route=route, status=status,
                                 seconds=seconds)
        access_log.info("%s %s %s %.1f ms", request.method, request.path, status,
                        seconds * 1000, extra={"method": request.method, "path": request.path,
                                               "status": status, "ms": round(seconds * 1000, 1)})
        REQUEST_ID.reset(token)


class RedactingFilter(logging.Filter):
    """Masks secrets (and optionally personal data) in messages, arguments and extras."""

    def __init__(self, secrets: Iterable[str] = (), *, pii: bool = False) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self.pii = pii

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return redact(text) if self.pii else text

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            args = tuple(MASK if isinstance(a, Secret) else a for a in args)
        elif isinstance(args, Mapping):
            args = {k: MASK if isinstance(v, Secret) else v for k, v in args.items()}
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError, KeyError):
            message = f"{record.msg} {args}"
        record.msg, record.args = self.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, MASK if isinstance(value, Secret) else self.mask(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            data["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = REQUEST_ID.get()
        line = super().format(record)
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging(*, fmt: Literal["text", "json"] = "text", level: int = logging.INFO,
                      secrets: Iterable[str] = (), pii: bool = False) -> logging.Handler:
    """Put one filtered stderr handler in ``fmt`` in place of the root's console handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets, pii=pii))
    root = logging.getLogger()
    for old in list(root.handlers):
        if type(old) is logging.StreamHandler:  # basicConfig's or ours; others stay
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
