"""Validated settings fields: ``top_k: int = check(positive, default=3)``.

Each library's settings dataclasses declare their checks with these; ``bot/`` runs them when
it reads ``bot.yaml`` and reports a failing one with file, line and key path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[Any], str | None]


def check(*checks: Check, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with validation functions run after type conversion."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"checks": checks})
    if isinstance(default, list | dict | set):
        raise TypeError("use an immutable default")
    return dataclasses.field(default=default, metadata={"checks": checks})


def non_empty(value: Any) -> str | None:
    return "must not be empty" if len(value) == 0 else None


def between(low: float, high: float) -> Check:
    def _check(value: Any) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}"

    return _check


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def http_url(value: Any) -> str | None:
    """An absolute ``http://`` or ``https://`` URL with a host."""
    try:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return None
    except ValueError:  # e.g. an unclosed IPv6 bracket
        pass
    return "must be an absolute http:// or https:// URL with a host"


def identifier(value: Any) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", value):
        return None
    return "must be a name of letters, digits, '_' or '-'"


def valid_regex(value: Any) -> str | None:
    """Check for a field holding a regular expression."""
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None
