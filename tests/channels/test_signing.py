from __future__ import annotations

import hashlib
import hmac

import pytest

from channels.signing import (
    ReplayCache,
    SignatureError,
    sign,
    signature_headers,
    verify,
)

SECRET = "s3cret-s3cret-s3cret"
BODY = b'{"sender": "u1", "message": "hi"}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, 1700000000) == "sha256=" + expected
    headers = signature_headers(SECRET, BODY, now=1700000000.9)
    assert headers == {"X-Bot-Timestamp": "1700000000", "X-Bot-Signature": "sha256=" + expected}


def test_verify_accepts_fresh_and_rejects_everything_else() -> None:
    now = 1_700_000_000
    good = sign(SECRET, BODY, now)
    verify(SECRET, BODY, signature=good, timestamp=str(now), now=now + 299)
    cases = [
        (dict(signature=good, timestamp=str(now), now=now + 301), "outside the allowed window"),
        (dict(signature=good, timestamp=str(now), now=now - 301), "outside the allowed window"),
        (dict(signature=good, timestamp=None, now=now), "missing request timestamp"),
        (dict(signature=good, timestamp="soon", now=now), "not an integer"),
        (dict(signature=None, timestamp=str(now), now=now), "missing request signature"),
        (dict(signature=good[7:], timestamp=str(now), now=now), "must start with"),
        (dict(signature=sign("other-secret-value", BODY, now), timestamp=str(now), now=now),
         "does not match"),
        (dict(signature=sign(SECRET, BODY, now - 1), timestamp=str(now), now=now),
         "does not match"),
    ]
    for kwargs, message in cases:
        with pytest.raises(SignatureError, match=message):
            verify(SECRET, BODY, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, BODY + b" ", signature=good, timestamp=str(now), now=now)
    verify(SECRET, BODY, signature=good, timestamp=str(now), window=10, now=now + 10)


def test_replay_cache_rejects_a_signature_seen_within_the_window() -> None:
    cache = ReplayCache(window=300)
    cache.check_and_add("sha256=a", now=0)
    cache.check_and_add("sha256=b", now=1)
    with pytest.raises(SignatureError, match="replayed"):
        cache.check_and_add("sha256=a", now=599)
    cache.check_and_add("sha256=a", now=601)  # expired: the timestamp check rejects it anyway
    assert len(cache) == 1  # both old entries were pruned


def test_replay_cache_is_bounded() -> None:
    cache = ReplayCache(window=300, max_entries=3)
    for i in range(10):
        cache.check_and_add(f"sig{i}", now=float(i))
    assert len(cache) <= 3
