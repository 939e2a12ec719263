"""The way in: every value a request carries becomes a valid value or a clear 4xx here.

A JSON body is UTF-8, an object, nested at most :data:`MAX_JSON_DEPTH` levels, with
integers of at most :data:`MAX_INT_DIGITS` digits and only valid Unicode in its keys and
strings (``"\\ud800"`` is valid JSON but no text). A header, path or query value is valid
Unicode without control characters. A credential or signature is printable ASCII (else it
is no credential at all) and is compared as bytes in constant time. Every channel reads its
requests through these functions, so no byte sequence reaches the core unchecked.
"""

from __future__ import annotations

import hmac
import json
import unicodedata

from aiohttp import web

from foundation.errors import BadRequest

MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 64
_TOO_DEEP = f"request body is nested too deeply (limit {MAX_JSON_DEPTH} levels)"


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadRequest(f"request body has an integer of {len(text.lstrip('-'))} digits "
                         f"(limit {MAX_INT_DIGITS})")
    return int(text)


def is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode text: no lone surrogates (which also stand for
    bytes that were not UTF-8) and no NUL."""
    return "\x00" not in value and not any(unicodedata.category(c) == "Cs" for c in value)


def json_depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects (a scalar: 0); iterative, so any depth
    is safe to measure. Raises :class:`BadRequest` naming a key or string that is not text
    (``'message' contains binary data``)."""
    deepest, pending = 0, [(value, 1, "", "the request body")]
    while pending:
        item, depth, path, where = pending.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise BadRequest(f"{where} contains binary data")
            continue
        children: list[tuple[object, int, str, str]]
        if isinstance(item, dict):
            keys_where = f"a key in '{path}'" if path else "a key"
            children = [(k, depth + 1, path, keys_where) for k in item]
            children += [(v, depth + 1, f"{path}.{k}" if path else str(k),
                          f"'{path}.{k}'" if path else f"'{k}'") for k, v in item.items()]
        elif isinstance(item, list):
            children = [(v, depth + 1, f"{path}[{i}]", f"'{path}[{i}]'")
                        for i, v in enumerate(item)]
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend(children)
    return deepest


def parse_json(raw: bytes) -> dict[str, object]:
    """``raw`` as a JSON object, or :class:`BadRequest` saying what is wrong (not UTF-8, not
    JSON, not an object, too deep, a huge integer, a string that is not text)."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_integer)
    except UnicodeDecodeError as exc:
        raise BadRequest("request body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") \
            from exc
    except RecursionError as exc:
        raise BadRequest(_TOO_DEEP) from exc
    except ValueError as exc:  # a float literal too long for Python, and the like
        raise BadRequest(f"request body has a value that cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise BadRequest(_TOO_DEEP)
    return data


def text_value(value: str, what: str) -> str:
    """``value`` (from a path, query or header) when it is text without control
    characters; :class:`BadRequest` naming ``what`` otherwise."""
    if not is_text(value) or any(unicodedata.category(c) == "Cc" for c in value):
        raise BadRequest(f"{what} is not valid text (binary data or control characters)")
    return value


def path_value(request: web.Request, name: str) -> str:
    """The route's ``{name}`` part, checked as text."""
    return text_value(request.match_info[name], f"the path's {name!r}")


def query_value(request: web.Request, name: str) -> str | None:
    """The ``?name=`` query parameter, checked as text (None when absent)."""
    value = request.query.get(name)
    return None if value is None else text_value(value, f"the query parameter {name!r}")


def credential(value: str | None) -> bytes | None:
    """A token or signature as bytes: printable ASCII without spaces, else None (a value
    that cannot be one, e.g. ``\\xff`` or ``é``, is treated as absent)."""
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        return None
    return value.encode("ascii")


def same_secret(given: str | None, expected: str | bytes) -> bool:
    """Whether ``given`` equals ``expected``, compared as bytes in constant time."""
    presented = credential(given)
    wanted = expected.encode("utf-8") if isinstance(expected, str) else expected
    return presented is not None and hmac.compare_digest(presented, wanted)
