"""HMAC-SHA256 request signing for webhooks, with a timestamp window and replay protection.

The scheme (used by the ``webhook`` channel both ways, and reusable by any connector)::

    X-Bot-Timestamp: <unix seconds>
    X-Bot-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>

A receiver checks that the timestamp is within ``window`` seconds of its clock, that the
signature matches (constant-time), and that it has not seen the same signature within the
window (:class:`ReplayCache`). Slack's ``v0`` scheme differs only in how the signed bytes
and the header are written; :func:`hmac_hex` and :func:`check_timestamp` serve it too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict

from channels.boundary import same_secret
from foundation.errors import ChannelError

SIGNATURE_HEADER = "X-Bot-Signature"
TIMESTAMP_HEADER = "X-Bot-Timestamp"
PREFIX = "sha256="
DEFAULT_WINDOW_S = 300.0


class SignatureError(ChannelError):
    """A request's signature or timestamp is missing, wrong, stale or replayed (HTTP 401)."""


def hmac_hex(secret: str | bytes, message: bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` under ``secret``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | str) -> str:
    """The ``X-Bot-Signature`` value for ``body`` sent at ``timestamp``."""
    return PREFIX + hmac_hex(secret, f"{timestamp}.".encode("ascii") + body)


def signature_headers(secret: str | bytes, body: bytes, *,
                      now: float | None = None) -> dict[str, str]:
    """Headers that sign ``body`` now: timestamp and signature."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, body, timestamp)}


def check_timestamp(timestamp: str | None, *, window: float, now: float | None = None) -> int:
    """The timestamp as an int, or :class:`SignatureError` when missing or out of window."""
    if not timestamp:
        raise SignatureError("missing request timestamp")
    if not re.fullmatch(r"[0-9]{1,15}", timestamp):  # ASCII digits only: int() takes more
        raise SignatureError("request timestamp is not an integer")
    value = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - value) > window:
        raise SignatureError(f"request timestamp is outside the allowed window of {window:g} s")
    return value


def verify(secret: str | bytes, body: bytes, *, signature: str | None, timestamp: str | None,
           window: float = DEFAULT_WINDOW_S, now: float | None = None) -> None:
    """Check a signed request; raise :class:`SignatureError` saying what is wrong."""
    value = check_timestamp(timestamp, window=window, now=now)
    if not signature:
        raise SignatureError("missing request signature")
    if not signature.startswith(PREFIX):
        raise SignatureError(f"request signature must start with {PREFIX!r}")
    if not same_secret(signature, sign(secret, body, value)):
        raise SignatureError("request signature does not match")


class ReplayCache:
    """Signatures seen within the window; a second request with one of them is a replay.

    In memory, per process: with several workers behind a load balancer a replay that lands
    on another worker within the window is not caught (the timestamp window still bounds it).
    """

    def __init__(self, window: float = DEFAULT_WINDOW_S, *, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, signature: str, *, now: float | None = None) -> None:
        """Remember ``signature``; raise :class:`SignatureError` if it was seen already."""
        current = time.monotonic() if now is None else now
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > current and len(self._seen) < self.max_entries:
                break
            del self._seen[oldest]
        if signature in self._seen:
            raise SignatureError("request was already received (replayed signature)")
        self._seen[signature] = current + 2 * self.window  # covers the window both ways

    def __len__(self) -> int:
        return len(self._seen)
