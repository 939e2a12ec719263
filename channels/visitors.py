"""Visitor sessions for browser clients: server-issued, signed, expiring session tokens.

A browser (the page chat, the widget, a WebSocket client) never chooses its sender id. It
asks for a session with ``POST <channel prefix>/session`` and gets ``{"token", "sender",
"expires_at"}``; it then sends the token with every request (``Authorization: Bearer
<token>``, or ``?token=`` when opening a websocket, where browsers cannot set headers). The
conversation is ``<channel>:<sender>`` of the token, whatever the request body says. Posting
to ``/session`` with a valid token renews it (same sender, new expiry). A token is
``base64url(JSON {"sub", "ch", "exp"}) "." hex HMAC-SHA256`` under the server's
``security.session_secret`` (the same on every worker), like Bot Framework Direct Line's
conversation tokens.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from channels.boundary import credential, query_value, same_secret
from channels.http import request_token, unauthorized
from channels.signing import hmac_hex
from foundation.errors import Forbidden

DEFAULT_TTL_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Visitor:
    """Who holds a session token: the conversation ``channel:sender``, until ``expires_at``."""

    channel: str
    sender: str
    expires_at: float

    @property
    def session_key(self) -> str:
        return f"{self.channel}:{self.sender}"


class VisitorTokens:
    """Issues and checks session tokens under one secret."""

    def __init__(self, secret: str | bytes, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.ttl_s = ttl_s

    def issue(self, channel: str, sender: str | None = None, *,
              now: float | None = None) -> tuple[str, Visitor]:
        """A token for ``sender`` (a new random visitor when None) on ``channel``."""
        visitor = Visitor(channel, sender or f"v-{secrets.token_hex(16)}",
                          round((time.time() if now is None else now) + self.ttl_s))
        claims = json.dumps({"sub": visitor.sender, "ch": channel, "exp": visitor.expires_at},
                            separators=(",", ":")).encode("utf-8")
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
            visitor = Visitor(str(claims["ch"]), str(claims["sub"]), float(claims["exp"]))
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


def session_route(prefix: str, channel: str) -> web.AbstractRouteDef:
    """``POST <prefix>/session``: a new visitor of ``channel``, or the caller's renewed."""

    async def session(request: web.Request) -> web.Response:
        tokens = tokens_of(request)
        current = visitor_of(request, channel) if presented_token(request) else None
        token, visitor = tokens.issue(channel, current.sender if current else None)
        return web.json_response({"token": token, "sender": visitor.sender,
                                  "expires_at": visitor.expires_at},
                                 headers={"Cache-Control": "no-store"})

    return web.post(f"{prefix}/session", session)


def own_sender(visitor: Visitor, claimed: object) -> str:
    """The visitor's sender; :class:`Forbidden` when the request names somebody else."""
    if claimed not in (None, visitor.sender):
        raise Forbidden("this session token belongs to another sender; a browser cannot "
                        "choose its sender id")
    return visitor.sender
