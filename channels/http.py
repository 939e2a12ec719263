"""Request helpers shared by HTTP channels."""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiohttp import web

from channels.boundary import parse_json, same_secret
from foundation.errors import BadRequest
from foundation.messages import clean_text

MAX_SENDER_CHARS = 200
DEFAULT_MESSAGE_CHARS = 4000
MESSAGE_LIMIT: web.AppKey[int] = web.AppKey("max_message_chars", int)  # set by the server
API_TOKENS: web.AppKey[tuple[str, ...]] = web.AppKey("api_tokens", tuple)  # security.api_tokens


def checked_text(request: web.Request, text: object) -> str:
    """A message's text, validated now as the dialogue would (:class:`BadRequest` if it is
    not a string, empty, binary or over the server's ``max_message_chars``): for channels
    that answer later and would otherwise report the problem only then."""
    return clean_text(text, max_chars=request.config_dict.get(MESSAGE_LIMIT,
                                                              DEFAULT_MESSAGE_CHARS))


async def read_json(request: web.Request) -> dict[str, object]:
    """The request body as a JSON object (413 past the app's body limit, 400 when invalid)."""
    return parse_json(await request.read())


def request_token(request: web.Request) -> str | None:
    """The API token a request carries, if any (compare it with :func:`same_secret`)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Api-Token") or None


def matching_token(given: str | None, tokens: Iterable[str]) -> str | None:
    """The one of ``tokens`` that ``given`` equals (compared in constant time), or None."""
    return next((t for t in tokens if t and same_secret(given, t)), None)


def check_token(request: web.Request, tokens: Iterable[str], *,
                disabled: str = "no security.api_tokens configured") -> str:
    """The one of ``tokens`` the request carries; 401 without it, 403 saying ``disabled``
    when there are none."""
    allowed = [t for t in tokens if t]
    if not allowed:
        raise web.HTTPForbidden(text=json.dumps({"error": f"this API is disabled: {disabled}"}),
                                content_type="application/json")
    matched = matching_token(request_token(request), allowed)
    if matched is None:
        raise web.HTTPUnauthorized(
            text='{"error": "a valid API token is required"}', content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="supportbot"'})
    return matched


def ignored(why: str, headers: dict[str, str] | None = None) -> web.Response:
    """A platform's event taken and deliberately not answered (200: it must not retry)."""
    return web.json_response({"ok": True, "ignored": why}, headers=headers)


def unauthorized(message: str) -> web.HTTPUnauthorized:
    """A 401 with a JSON ``{"error": ...}`` body, to raise from a handler."""
    return web.HTTPUnauthorized(text=json.dumps({"error": message}),
                                content_type="application/json")


def sender_id(data: dict[str, object]) -> str:
    """The ``sender`` field of a request, validated."""
    sender = data.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest("'sender' is required and must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"'sender' is too long (limit {MAX_SENDER_CHARS} characters)")
    return sender.strip()


def message_fields(data: dict[str, object]) -> tuple[str, object, dict[str, object]]:
    """``(sender, message, metadata)`` of a ``{"sender", "message", "metadata"?}`` body."""
    sender = sender_id(data)
    if "message" not in data:
        raise BadRequest("'message' is required")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be a JSON object")
    return sender, data["message"], metadata
