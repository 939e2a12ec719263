"""Bot Framework authentication, both ways (for the ``teams`` channel).

In: the Bot Connector sends every activity with ``Authorization: Bearer <JWT>``. The token
must be RS256-signed by a key in the connector's OpenID metadata (``jwks_uri`` of
``openid_metadata_url``), carry ``iss`` = ``https://api.botframework.com`` and ``aud`` = the
bot's app id, be within ``nbf``/``exp`` give or take five minutes, and its ``serviceurl``
claim must equal the activity's ``serviceUrl``; a key that lists ``endorsements`` must
endorse the activity's ``channelId``
(https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
Keys are cached for a day and fetched again when a token names a key not in the cache (at
most once a minute, so forged key ids cannot make the bot hammer the metadata endpoint).

Out: replies carry an OAuth 2.0 client-credentials token for the app id (scope
``https://api.botframework.com/.default``), cached until five minutes before it expires, and
go only to service URLs whose host is allowed (:func:`allowed_service_url`): a token is never
sent to a host an activity names unless the operator allowed it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from channels.boundary import credential
from channels.delivery import DeliveryError, Outbox
from foundation.errors import ChannelError

log = logging.getLogger(__name__)
ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
SERVICE_URL_CLAIM = "serviceurl"  # the claim's name in the connector's tokens
LEEWAY_S = 300
KEYS_TTL_S = 24 * 3600
TOKEN_MARGIN_S = 300
_HOST = re.compile(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*|[0-9a-f:]+", re.IGNORECASE)


class AuthError(ChannelError):
    """An incoming request's token is missing or not valid (HTTP 401)."""


class KeysUnavailable(ChannelError):
    """The signing keys cannot be fetched, so no token can be checked (HTTP 503)."""


def host_patterns(value: Any) -> str | None:
    """Config check: host names, each maybe ``*.`` and a domain (or an IP address)."""
    bad = [h for h in value if not _HOST.fullmatch(h)]
    return f"{bad[0]!r} must be a host name or '*.' followed by a domain" if bad else None


def allowed_service_url(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether ``url`` is an ``https://`` URL whose host is one of ``hosts`` (``*.domain``
    matches its subdomains); plain ``http://`` only to an allowed loopback host (tests)."""
    try:
        parts = urlsplit(url)
        host, _ = (parts.hostname or "").lower(), parts.port  # .port: ValueError if invalid
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
        return False
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:]))
               for p in (h.lower() for h in hosts))


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def get_json(outbox: Outbox, url: str, what: str) -> dict[str, Any]:
    """GET ``url`` as a JSON object; :class:`KeysUnavailable` saying why not."""
    try:
        async with outbox.client().get(url) as response:
            if response.status != 200:
                raise KeysUnavailable(f"{what} answered HTTP {response.status}")
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise KeysUnavailable(f"{what} could not be read: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise KeysUnavailable(f"{what} is not a JSON object")
    return data


class SigningKeys:
    """The connector's signing keys (``kid`` -> key and the channels it endorses)."""

    min_refresh_s = 60.0  # an unknown kid refetches the keys at most this often

    def __init__(self, metadata_url: str, outbox: Outbox, *, ttl_s: float = KEYS_TTL_S) -> None:
        self.metadata_url = metadata_url
        self.outbox = outbox
        self.ttl_s = ttl_s
        self._keys: dict[str, tuple[jwt.PyJWK, tuple[str, ...]]] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    def _stale(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        age = time.monotonic() - self._fetched_at
        return age > self.ttl_s or (kid not in self._keys and age >= self.min_refresh_s)

    async def get(self, kid: str) -> tuple[jwt.PyJWK, tuple[str, ...]]:
        """The key ``kid`` and its endorsements; :class:`AuthError` if there is none."""
        if self._stale(kid):
            async with self._lock:
                if self._stale(kid):
                    await self._refresh()
        if kid not in self._keys:
            raise AuthError(f"the token is signed with an unknown key {kid[:64]!r}")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            metadata = await get_json(self.outbox, self.metadata_url, "the OpenID metadata")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise KeysUnavailable("the OpenID metadata has no jwks_uri")
            found = (await get_json(self.outbox, jwks_uri, "the signing keys")).get("keys")
        except KeysUnavailable:
            if not self._keys:
                raise
            log.warning("teams: refreshing the signing keys failed; keeping the cached ones",
                        exc_info=True)
            self._fetched_at = time.monotonic()
            return
        keys: dict[str, tuple[jwt.PyJWK, tuple[str, ...]]] = {}
        for item in found if isinstance(found, list) else []:
            try:
                key = jwt.PyJWK(item)
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError, KeyError):
                continue  # not an RSA signing key we can use
            endorsements = item.get("endorsements")
            if isinstance(item.get("kid"), str):
                keys[item["kid"]] = (key, tuple(e for e in endorsements or ()
                                                if isinstance(e, str)))
        if not keys:
            raise KeysUnavailable("the signing keys document lists no usable key")
        self._keys, self._fetched_at = keys, time.monotonic()


class TokenValidator:
    """Checks the connector's ``Authorization`` header for app ``app_id``."""

    def __init__(self, app_id: str, keys: SigningKeys) -> None:
        self.app_id = app_id
        self.keys = keys

    async def verify(self, authorization: str | None) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The token's claims and its key's endorsements; :class:`AuthError` saying why the
        token is not valid (:class:`KeysUnavailable` when no key can be fetched)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or credential(token) is None:
            raise AuthError("missing or malformed 'Authorization: Bearer <token>' header")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the bearer token is not a JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise AuthError("the token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token names no signing key (kid)")
        key, endorsements = await self.keys.get(kid)
        try:
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=self.app_id,
                                issuer=ISSUER, leeway=LEEWAY_S,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("the token is for another app (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(f"the token was not issued by {ISSUER}") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the token is not valid: {exc}") from exc
        return claims, endorsements


class AppToken:
    """The bot's own OAuth token for calling the connector, cached until near expiry."""

    def __init__(self, token_url: str, app_id: str, app_password: str, outbox: Outbox) -> None:
        self.token_url = token_url
        self.app_id = app_id
        self.app_password = app_password
        self.outbox = outbox
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid access token; :class:`DeliveryError` when none can be had."""
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            result = await self.outbox.post(self.token_url, {
                "grant_type": "client_credentials", "client_id": self.app_id,
                "client_secret": self.app_password, "scope": SCOPE},
                form=True, what="bot framework token request", paced=False)
            token = result.get("access_token") if isinstance(result, dict) else None
            lifetime = result.get("expires_in") if isinstance(result, dict) else None
            if isinstance(lifetime, str) and lifetime.isdecimal():
                lifetime = int(lifetime)
            if not isinstance(token, str) or not token or not isinstance(lifetime, int):
                raise DeliveryError("the token endpoint answered without access_token and "
                                    "expires_in")
            margin = min(TOKEN_MARGIN_S, lifetime / 2)
            self._token, self._expires_at = token, time.monotonic() + lifetime - margin
            return token
