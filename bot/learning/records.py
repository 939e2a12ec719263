"""What the conversation readers share: where errors point, JSON read with the line of every
object, checked field values, and messages collected per conversation.

Limits: a file at most 256 MiB, a line of JSON lines or CSV at most 1 MiB, a message at most
100,000 characters.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.errors import TranscriptError
from bot.learning.transcripts import Conversation, Message, Speaker

MAX_FILE_BYTES = 256 << 20
MAX_LINE_BYTES = 1 << 20
MAX_MESSAGE_CHARS = 100_000
CONTAINERS = ("payload", "data", "conversations", "tickets")  # lists of records in a document
RECORD_KEYS = ("messages", "message_type", "comments", "role")  # what a record has
_UNIX_MS = 10**11  # a Unix time above this is in milliseconds

Record = tuple[int, str, dict[str, Any]]  # line, field path, the record


@dataclass(frozen=True)
class Source:
    """The file being read: as typed (errors name it) and its name (provenance names it)."""

    shown: str
    name: str

    def error(self, reason: str, line: int | None = None, where: str = "") -> TranscriptError:
        return TranscriptError(reason, file=self.shown, line=line, path=where)


class Threads:
    """Conversations being read: messages collected per conversation, in file order."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.non_chat = 0  # system, tool, activity and template messages dropped
        self.private = 0  # private notes dropped
        self._threads: list[tuple[str, int, list[Message]]] = []
        self._by_id: dict[str, list[Message]] = {}

    def thread(self, name: str, line: int, *, grouped: bool) -> list[Message]:
        """The messages of conversation ``name`` first seen on ``line``: the same list for
        every record of that id when ``grouped``, otherwise a new conversation."""
        if grouped and name in self._by_id:
            return self._by_id[name]
        messages: list[Message] = []
        self._threads.append((name, line, messages))
        if grouped:
            self._by_id[name] = messages
        return messages

    def add(self, thread: list[Message], speaker: Speaker | None, text: str,
            at: str | None) -> None:
        """Add a message to ``thread``; one with no speaker is not a chat turn (counted)."""
        if speaker is None:
            self.non_chat += 1
        else:
            thread.append(Message(speaker=speaker, text=text, at=at))

    def conversations(self) -> tuple[Conversation, ...]:
        return tuple(Conversation(id=name, source=f"{self.source.name}:{line}",
                                  messages=tuple(messages))
                     for name, line, messages in self._threads)


class _Located(dict[str, Any]):
    """A JSON object that knows its line (1-based)."""

    line = 0


def line_of(value: Any, default: int) -> int:
    """The line a JSON object started on, when it was read with lines."""
    return value.line if isinstance(value, _Located) else default


def field(where: str, key: str) -> str:
    """The path of ``key`` inside the value at ``where``."""
    return f"{where}.{key}" if where else key


def check_lines(text: str, source: Source) -> None:
    """Refuse a line over :data:`MAX_LINE_BYTES` (JSON lines and CSV)."""
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode()) > MAX_LINE_BYTES:
            raise source.error(f"line longer than {MAX_LINE_BYTES >> 20} MiB", number)


def json_records(text: str, source: Source) -> list[Record]:
    """The records (objects: conversations, messages or tickets) in a JSON document or in
    JSON lines, each with its line; lists and API wrappers (``payload``, ``data``,
    ``conversations``, ``tickets``) are opened."""
    lines = text.split("\n")
    first = next(line for line in lines if line.strip())
    try:
        json.loads(first)
    except json.JSONDecodeError:  # the first line is not a whole value: one document
        try:
            document = _located_json(text)
        except json.JSONDecodeError as exc:
            raise source.error(f"invalid JSON: {exc.msg}", exc.lineno) from exc
        values: list[tuple[int, Any]] = [(line_of(document, 1), document)]
    else:
        check_lines(text, source)
        values = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    values.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise source.error(f"invalid JSON: {exc.msg}", number) from exc
    records = [record for line, value in values for record in _open(line, "", value, source)]
    if not records:
        raise source.error("holds no conversations", values[0][0])
    return records


def _open(line: int, where: str, value: Any, source: Source) -> Iterator[Record]:
    line = line_of(value, line)
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _open(line, f"{where}[{i}]", item, source)
    elif isinstance(value, dict):
        inside = next((key for key in CONTAINERS if isinstance(value.get(key), list | dict)),
                      None)
        if inside is None or any(key in value for key in RECORD_KEYS):
            yield line, where, value
        else:
            yield from _open(line, field(where, inside), value[inside], source)
    else:
        raise source.error("must be an object (a conversation, a message or a ticket)", line,
                           where)


def _located_json(text: str) -> Any:
    """``json.loads(text)`` whose objects know their line (the pure-Python scanner, which
    lets the object parser be wrapped)."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    decoder = json.JSONDecoder()

    def parse_object(state: tuple[str, int], *args: Any) -> tuple[_Located, int]:
        value, end = json.decoder.JSONObject(state, *args)  # type: ignore[attr-defined]
        located = _Located(value)
        located.line = bisect.bisect_left(newlines, state[1]) + 1
        return located, end

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def required(record: dict[str, Any], key: str, source: Source, line: int, where: str) -> Any:
    """``record[key]``, which must be there and not null."""
    if record.get(key) is None:
        raise source.error("missing field", line, field(where, key))
    return record[key]


def conversation_id(value: Any, source: Source, line: int, where: str) -> str:
    """A conversation id: a non-empty string or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise source.error(f"must be a non-empty string or a number, got {value!r}", line, where)


def text_of(value: Any, source: Source, line: int, where: str) -> str:
    """A message's text: a string, null (empty), or OpenAI-style content parts."""
    if value is None:
        return ""
    if isinstance(value, list):
        parts = [p.get("text") if isinstance(p, dict) else p for p in value]
        if not all(isinstance(p, str) for p in parts):
            raise source.error("content parts must be strings or {'type': 'text', 'text': ...}",
                               line, where)
        value = "\n".join(str(p) for p in parts)
    if not isinstance(value, str):
        raise source.error(f"must be text, got {type(value).__name__}", line, where)
    if len(value) > MAX_MESSAGE_CHARS:
        raise source.error(f"longer than {MAX_MESSAGE_CHARS:,} characters", line, where)
    return value


def timestamp(value: Any, source: Source, line: int, where: str) -> str | None:
    """An ISO 8601 timestamp from ISO text or Unix seconds (or milliseconds); None when the
    source has none."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and not value.strip().isdigit():
            return dt.datetime.fromisoformat(value.strip()).isoformat()
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            seconds = float(value)
            seconds = seconds / 1000 if seconds > _UNIX_MS else seconds
            return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    raise source.error(f"not a timestamp: {value!r}; use ISO 8601 (2024-05-01T14:30:00Z) or "
                       "Unix seconds", line, where)
