"""What the fuzz tests share: JSON values of any shape, a server with every channel, and a
spy on the only door into the dialogue."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import strategies as st

from channels.registry import CHANNELS
from foundation.messages import UserMessage

from .production_support import (
    ServerThread,
)

NO_LIMITS = "security:\n  sender_rate_limit: null\n  ip_rate_limit: null\n"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


# The platform channels (WhatsApp, Messenger, Instagram, Twilio, Teams): a spy on the only
# door into the dialogue (``on_message``) tells whether a request got through.
def dialogue_spy(server: ServerThread, names: list[str]) -> list[UserMessage]:
    """Record every message the channels ``names`` hand to the dialogue from now on."""
    reached: list[UserMessage] = []
    for name in names:
        channel = server.app[CHANNELS][name]

        async def on_message(message: UserMessage, passed_on: Any = channel.on_message) -> Any:
            reached.append(message)
            return await passed_on(message)

        channel.on_message = on_message
    return reached


def settle(server: ServerThread, names: list[str]) -> None:
    """Wait until the background answers the channels ``names`` started have run."""
    async def drain() -> None:
        await asyncio.gather(*(server.app[CHANNELS][n].outbox.drain(30) for n in names))

    server.call(drain())


def channel_name(path: str) -> str:
    return path.rsplit("/", 1)[1]


def error_of(raw: bytes) -> str:
    """The ``error`` of a JSON error answer (AssertionError when it is not one)."""
    answer = json.loads(raw)
    assert isinstance(answer, dict) and isinstance(answer.get("error"), str), raw[:300]
    return answer["error"]


def nested(depth: int, leaf: str, kind: str) -> str:
    """JSON text nesting ``leaf`` (JSON text) ``depth`` levels deep in lists or objects."""
    opening, closing = ("[", "]") if kind == "list" else ('{"k": ', "}")
    return opening * depth + leaf + closing * depth


leaves = json_values.map(json.dumps)
shapes = st.one_of(  # JSON text of the values endpoints read: any depth, size and type
    st.builds(nested, st.integers(0, 3000), leaves, st.sampled_from(["list", "dict"])),
    leaves, st.text(max_size=6000).map(json.dumps),
    st.sampled_from(["0", "-1", "1e308", "true", "null", '""', "[]", "{}"]))
fields = st.sampled_from(["sender", "message", "metadata", "id", "text", "agent", "rating",
                          "reply_index", "comment", "channel", "type", "event", "update_id"])
bodies = st.one_of(
    st.dictionaries(fields, shapes, max_size=4).map(
        lambda v: ("{" + ", ".join(f'"{k}": {t}' for k, t in v.items()) + "}").encode()),
    shapes.map(str.encode),
    st.binary(max_size=2000),
    st.integers(60_000, 100_000).map(lambda n: b'{"message": "' + b"x" * n + b'"}'))


# Hostile values for every part of a request: huge numbers, lone surrogates, invalid UTF-8,
# digits of other scripts, malformed URLs, control bytes (no CR/LF: they end a header).
odd_digits = st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९", min_size=1, max_size=12)
hostile_text = st.one_of(
    st.sampled_from(["9" * 5000, "-" + "1" * 4400, "1e99999", "\\ud800", "a\\udfff", "\\u0000",
                     "http://[", "https://[::1", "//evil", "sha256=", "v0=", "Bearer ",
                     "Bearer a.b", "null", "é", "../../etc/passwd", "%ED%A0%80"]),
    odd_digits, st.text(max_size=40))
hostile_bytes = st.one_of(
    hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"\xff\xfe", b"\xc3\xa9", b"\xed\xa0\x80", b"abc.\xc3\xa9", b"\x00"]))


def quoted(raw: bytes) -> bytes:
    return b"".join(bytes([c]) if c < 128 and chr(c).isalnum() else b"%%%02X" % c for c in raw)


# Odd values for any field of a platform event: wrong types, lone surrogates, NUL, control
# characters, huge and long numbers, empty and over-long strings.
odd_values = st.one_of(json_values, st.sampled_from(
    ["", " ", "\ud800", "a\udfffb", "nul\x00", "\x07\x1b[2J", "x" * 300, "9" * 70, 10 ** 70,
     -1, 0, 1e308, True, None, [], {}, [{}], [[]]]))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` seven times in eight, else an odd value in its place."""
    return st.sampled_from(range(8)).flatmap(lambda n: odd_values if n == 7 else strategy)


def shaped(required: dict[str, Any], **optional: Any) -> st.SearchStrategy[Any]:
    return maybe(st.fixed_dictionaries(required, optional=optional))


ids = maybe(st.uuids().map(lambda u: u.hex[:16]) | st.text("0123456789", min_size=1, max_size=16)
            | st.integers(0, 10 ** 15))  # mostly new ids: a redelivered one is not answered
texts = maybe(st.text(max_size=300) | st.sampled_from(["hi", "pick_1", "\u00e9t\u00e9"]))
extras = maybe(json_values)  # fields the channels do not read
times = maybe(st.integers(0, 2 ** 53))


def lists(strategy: st.SearchStrategy[Any], size: int) -> st.SearchStrategy[Any]:
    return maybe(st.lists(strategy, min_size=1, max_size=size))
