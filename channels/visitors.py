"""Visitor sessions for browser clients: server-issued, signed, expiring session tokens.

A browser (the page chat, the widget, a WebSocket client) never chooses its sender id. It
asks for a session with ``POST <channel prefix>/session`` and gets ``{"token", "sender",
"expires_at"}``; it then sends the token with every request (``Authorization: Bearer
<token>``, or ``?token=`` when opening a websocket, where browsers cannot set headers). The
conversation is ``<channel>:<sender>`` of the token, whatever the request body says. Posting
to ``/session`` with a valid token renews it (same sender, new expiry). A token is
``base64url(JSON {"sub", "ch", "exp", "usr"?}) "." hex HMAC-SHA256`` under the server's
``security.session_secret`` (the same on every worker), like Bot Framework Direct Line's
conversation tokens.

Identified customers: a channel with an ``identity_secret`` accepts ``{"user": {"id",
"hash", ...attributes}}`` in the ``/session`` body, where ``hash`` is the hex HMAC-SHA256 of
``id`` under that secret, computed by the host site's server (as Chatwoot's identity
validation does). A valid one gets a token whose sender is derived from the id alone (so
every device of that customer shares one conversation) and which carries the attributes
(``usr``); messages then carry them as the ``identity`` metadata, which a browser can never
set itself. An unsigned or forged identity is refused (400/403) and nothing is issued.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from channels.boundary import credential, parse_json, query_value, same_secret
from channels.http import request_token, unauthorized
from channels.signing import hmac_hex
from foundation.errors import BadRequest, Forbidden
from foundation.settings import Secret

DEFAULT_TTL_S = 7 * 24 * 3600.0
IDENTITY = "identity"  # the metadata key of a verified customer's attributes
MIN_IDENTITY_SECRET_CHARS = 16
MAX_ATTRIBUTES = 12
MAX_ATTRIBUTE_CHARS = 200
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class Visitor:
    """Who holds a session token: the conversation ``channel:sender``, until ``expires_at``."""

    channel: str
    sender: str
    expires_at: float
    user: Mapping[str, str] | None = field(default=None, compare=False)  # verified identity

    @property
    def session_key(self) -> str:
        return f"{self.channel}:{self.sender}"


class VisitorTokens:
    """Issues and checks session tokens under one secret."""

    def __init__(self, secret: str | bytes, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.ttl_s = ttl_s

    def issue(self, channel: str, sender: str | None = None, *, now: float | None = None,
              user: Mapping[str, str] | None = None) -> tuple[str, Visitor]:
        """A token for ``sender`` (a new random visitor when None) on ``channel``; ``user``:
        a verified identity (its sender is then derived from its id)."""
        if user is not None:
            sender = "u-" + hmac_hex(self.secret, f"user:{user['id']}".encode())[:32]
        visitor = Visitor(channel, sender or f"v-{secrets.token_hex(16)}",
                          round((time.time() if now is None else now) + self.ttl_s), user)
        payload: dict[str, object] = {"sub": visitor.sender, "ch": channel,
                                      "exp": visitor.expires_at}
        if user is not None:
            payload["usr"] = dict(user)
        claims = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        body = base64.urlsafe_b64encode(claims).rstrip(b"=").decode("ascii")
        return f"{body}.{hmac_hex(self.secret, body.encode('ascii'))}", visitor

    def verify(self, token: str, channel: str | None, *, now: float | None = None) -> Visitor:
        """The visitor of ``token``; 401 when it is forged, expired or for another channel
        than ``channel`` (None: any)."""
        body, _, signature = token.partition(".")
        if credential(body) is None or not same_secret(
                signature, hmac_hex(self.secret, body.encode("ascii"))):
            raise unauthorized("the session token is not valid; get a new one from "
                               f"/webhooks/{channel or '<channel>'}/session")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            user = claims.get("usr")
            visitor = Visitor(str(claims["ch"]), str(claims["sub"]), float(claims["exp"]),
                              {str(k): str(v) for k, v in user.items()} if user else None)
        except (ValueError, KeyError, TypeError) as exc:
            raise unauthorized("the session token is not valid") from exc
        if channel is not None and visitor.channel != channel:
            raise unauthorized(f"this session token is for the {visitor.channel} channel")
        if visitor.expires_at < (time.time() if now is None else now):
            raise unauthorized("the session token has expired; get a new one from "
                               f"/webhooks/{visitor.channel}/session")
        return visitor


VISITOR_TOKENS: web.AppKey[VisitorTokens] = web.AppKey("visitor_tokens", VisitorTokens)


def tokens_of(request: web.Request) -> VisitorTokens:
    tokens = request.config_dict.get(VISITOR_TOKENS)
    if tokens is None:
        raise RuntimeError("the app has no VISITOR_TOKENS (set by the server)")
    return tokens


def presented_token(request: web.Request) -> str | None:
    """The session token a request carries: its ``Authorization`` header, or ``?token=``
    on a websocket handshake alone (browsers cannot set headers there; the access log
    never shows a query string, see bot/server/logs.py)."""
    token = request_token(request)
    if token is None and request.headers.get("Upgrade", "").lower() == "websocket":
        token = query_value(request, "token") or None
    return token


def visitor_of(request: web.Request, channel: str) -> Visitor:
    """The visitor whose session token ``request`` carries; 401 without a valid one."""
    token = presented_token(request)
    if token is None:
        raise unauthorized(f"a session token is required: POST /webhooks/{channel}/session "
                           "and send it as 'Authorization: Bearer <token>'")
    return tokens_of(request).verify(token, channel)


def identity_secret_problem(value: object) -> str | None:
    """Config check of ``identity_secret``: an ``${ENV}`` reference, at least 16 characters
    (empty: identities are refused)."""
    if not isinstance(value, Secret):
        return "write the identity secret as an environment variable reference " \
            "(${WEBCHAT_IDENTITY_SECRET}), never in the YAML"
    if 0 < len(value) < MIN_IDENTITY_SECRET_CHARS:
        return f"must be at least {MIN_IDENTITY_SECRET_CHARS} characters"
    return None


def verified_user(data: Mapping[str, object], secret: str | None) -> dict[str, str] | None:
    """The identity of a ``/session`` body (None: the body names nobody): its ``user.id``
    and string attributes. 400 when it is malformed or unsigned, 403 when this channel has no
    ``identity_secret`` or the hash is not the id's HMAC-SHA256 under it."""
    user = data.get("user")
    if user is None:
        return None
    if not isinstance(user, dict):
        raise BadRequest("'user' must be an object: {\"id\", \"hash\", ...attributes}")
    user_id, signature = user.get("id"), user.get("hash")
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_ATTRIBUTE_CHARS:
        raise BadRequest(f"'user.id' must be a string of 1 to {MAX_ATTRIBUTE_CHARS} characters")
    if not isinstance(signature, str) or not signature:
        raise BadRequest("'user.hash' is required: the hex HMAC-SHA256 of user.id under the "
                         "channel's identity_secret, computed by your server")
    if not secret:
        raise Forbidden("this bot does not accept identified customers (set the channel's "
                        "identity_secret); the visitor stays anonymous")
    if not same_secret(signature.lower(), hmac_hex(secret, user_id.encode("utf-8"))):
        raise Forbidden("'user.hash' does not match user.id: the identity is refused and the "
                        "visitor stays anonymous")
    attributes = {k: v for k, v in user.items() if k not in ("id", "hash")}
    if len(attributes) > MAX_ATTRIBUTES:
        raise BadRequest(f"'user' has more than {MAX_ATTRIBUTES} attributes")
    for name, value in attributes.items():
        if not ATTRIBUTE_NAME.fullmatch(name) or not isinstance(value, str) or \
                len(value) > MAX_ATTRIBUTE_CHARS or not value.isprintable():
            raise BadRequest(f"'user.{name[:40]}' must be a lowercase name with a string of at "
                             f"most {MAX_ATTRIBUTE_CHARS} printable characters")
    return {"id": user_id, **{k: str(v) for k, v in attributes.items()}}


def visitor_metadata(visitor: Visitor, metadata: Mapping[str, object]) -> dict[str, object]:
    """A browser message's metadata: whatever it sent, but ``identity`` only from its
    verified token."""
    kept = {k: v for k, v in metadata.items() if k != IDENTITY}
    if visitor.user is not None:
        kept[IDENTITY] = dict(visitor.user)
    return kept


def session_route(prefix: str, channel: str,
                  secret: str | None = None) -> web.AbstractRouteDef:
    """``POST <prefix>/session``: a new visitor of ``channel``, or the caller's renewed
    (its identity kept); with a ``{"user"}`` body, that identified customer's (``secret``:
    the channel's identity secret, see the module docstring)."""

    async def session(request: web.Request) -> web.Response:
        tokens = tokens_of(request)
        raw = await request.read()
        user = verified_user(parse_json(raw), secret) if raw.strip() else None
        current = visitor_of(request, channel) if presented_token(request) else None
        if user is None and current is not None:
            user = dict(current.user) if current.user else None
        token, visitor = tokens.issue(channel, current.sender if current else None, user=user)
        body: dict[str, object] = {"token": token, "sender": visitor.sender,
                                   "expires_at": visitor.expires_at}
        if user is not None:
            body["user"] = user
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return web.post(f"{prefix}/session", session)


def own_sender(visitor: Visitor, claimed: object) -> str:
    """The visitor's sender; :class:`Forbidden` when the request names somebody else."""
    if claimed not in (None, visitor.sender):
        raise Forbidden("this session token belongs to another sender; a browser cannot "
                        "choose its sender id")
    return visitor.sender
