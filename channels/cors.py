"""Cross-origin requests: only from the bot's allowed origins.

The allowed origins are ``server.cors_origins`` plus each channel's ``allowed_origins``
(the ``webchat`` channel has them), stored in the app under :data:`ALLOWED_ORIGINS`.
A request with an ``Origin`` header that is neither the bot's own host nor allowed gets
403 before any channel sees it, websocket handshakes included (browsers always send
``Origin`` there). A refused preflight carries no CORS headers, so the browser never sends
the real request; other refusals do, so the widget can tell the visitor why. Requests
without ``Origin`` (servers, curl, platform webhooks) pass. ``"*"`` allows every origin.
The widget's static files (``/webchat/``) are public.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from channels.boundary import credential

ALLOWED_ORIGINS: web.AppKey[frozenset[str]] = web.AppKey("allowed_origins", frozenset)
PUBLIC_PREFIXES = ("/webchat/",)
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, Authorization, X-Api-Token, X-Request-Id"
MAX_AGE_S = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# the headers an allowed cross-origin request gets, kept on the request
_GRANTED: web.RequestKey[dict[str, str]] = web.RequestKey("cors_headers", dict)


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case without a trailing slash (``*`` unchanged)."""
    origin = origin.strip().rstrip("/")
    return origin if origin == "*" else origin.lower()


def origin_problem(value: str) -> str | None:
    """Config check: an origin is ``*`` or ``scheme://host[:port]`` without a path."""
    if value == "*":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") \
            or parts.query or parts.fragment:
        return f"{value!r} is not an origin like 'https://shop.example.com'"
    return None


def origins_problem(values: Iterable[str]) -> str | None:
    """Config check for a list of origins."""
    return next((p for v in values if (p := origin_problem(v))), None)


def allowed_origins(*groups: Iterable[str]) -> frozenset[str]:
    """The normalised union of origin lists."""
    return frozenset(normalize_origin(o) for group in groups for o in group if o.strip())


def is_same_origin(request: web.Request, origin: str) -> bool:
    """Whether ``origin`` is the bot's own host (a page the bot served)."""
    try:
        return urlsplit(origin).netloc.lower() == request.host.lower()
    except ValueError:  # an unclosed IPv6 bracket and the like: no origin of ours
        return False


def _cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def granted_cors_headers(request: web.Request) -> dict[str, str]:
    """The CORS headers :func:`cors_middleware` granted ``request`` (none if it did not),
    for a response made outside it (the server's error responses)."""
    return request.get(_GRANTED, {})


def _forbidden(origin: str, *, readable: bool) -> web.Response:
    """403; ``readable`` lets the page read why (the request was not processed)."""
    message = (f"origin {origin} is not allowed to use this bot; add it to "
               "server.cors_origins or channels.webchat.allowed_origins")
    return web.Response(status=403, text=json.dumps({"error": message}),
                        content_type="application/json",
                        headers=_cors_headers(origin) if readable else None)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights, reject other origins, and mark allowed responses."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or request.path.startswith(PUBLIC_PREFIXES) \
            or is_same_origin(request, origin):
        return await handler(request)
    if credential(origin) is None:  # not printable ASCII: no origin, never echoed back
        return _forbidden("(malformed)", readable=False)
    allowed = request.config_dict.get(ALLOWED_ORIGINS, frozenset())
    preflight = request.method == hdrs.METH_OPTIONS and \
        hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    if normalize_origin(origin) not in allowed and "*" not in allowed:
        return _forbidden(origin, readable=not preflight)
    headers = request[_GRANTED] = _cors_headers(origin)
    if preflight:
        return web.Response(status=204, headers={
            **headers, "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Max-Age": MAX_AGE_S})
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(headers)
        raise
    if not response.prepared:  # a websocket or stream has sent its headers already
        response.headers.update(headers)
    return response
