"""Readers of past-conversation files: JSON lines with OpenAI-style roles, CSV, and
Chatwoot's and Zendesk's conversation JSON.

:func:`parse` tells the format from the content (or takes it from ``--format``) and returns
the conversations as read: texts are not yet redacted (the importer does that), and the
messages dropped on purpose (system and activity messages, private notes) are counted.
Bad input raises :class:`TranscriptError` naming the file, line and field.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import TranscriptError
from bot.learning.records import (
    MAX_FILE_BYTES,
    Record,
    Source,
    Threads,
    check_lines,
    conversation_id,
    field,
    json_records,
    line_of,
    required,
    text_of,
    timestamp,
)
from bot.learning.transcripts import Conversation, Message, Speaker

FORMATS = ("jsonl", "csv", "chatwoot", "zendesk")
CSV_COLUMNS = {  # what each column may be called (case, spaces and hyphens aside)
    "conversation": ("conversation_id", "conversation", "ticket_id"),
    "role": ("role", "author", "sender"),
    "text": ("text", "message", "content", "body"),
    "timestamp": ("timestamp", "time", "created_at"),
}
ROLES: dict[str, Speaker | None] = {  # CSV authors and chat roles; None: not a chat turn
    "customer": "customer", "user": "customer", "contact": "customer", "end-user": "customer",
    "end_user": "customer", "agent": "agent", "human": "agent", "staff": "agent",
    "support": "agent", "bot": "bot", "assistant": "bot", "system": None,
}
OPENAI_NON_CHAT = ("system", "developer", "tool", "function")
CHATWOOT_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
CHATWOOT_SENDERS: dict[str, Speaker] = {
    "contact": "customer", "user": "agent", "agent_bot": "bot", "agentbot": "bot",
    "captain_assistant": "bot",
}
ZENDESK_ROLES: dict[str, Speaker] = {"end-user": "customer", "agent": "agent", "admin": "agent"}

# reads one message into a conversation
MessageReader = Callable[[dict[str, Any], list[Message], Threads, int, str], None]


@dataclass(frozen=True)
class Parsed:
    """A file's conversations as read, before redaction and clean-up."""

    format: str
    conversations: tuple[Conversation, ...]  # texts as read, not yet redacted
    non_chat: int  # system, tool, activity and template messages dropped
    private: int  # private notes dropped


def read_bytes(path: Path) -> bytes:
    """The bytes of a file to import; a missing, unreadable or oversized file is an error."""
    shown = str(path)
    try:
        if path.is_dir():
            raise TranscriptError("is a folder, not a file", file=shown)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise TranscriptError(f"larger than {MAX_FILE_BYTES >> 20} MiB; split it",
                                  file=shown)
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise TranscriptError("file not found", file=shown) from exc
    except OSError as exc:
        raise TranscriptError(f"cannot be read: {exc.strerror}", file=shown) from exc


def parse(data: bytes, path: Path, *, format: str | None = None) -> Parsed:
    """The conversations in ``data``, the bytes of ``path`` (the path as typed: errors name
    it, provenance names the file), in ``format`` or the one its content shows."""
    source = Source(str(path), path.name)
    text = _decode(data, source)
    if (format or _text_kind(path, text)) == "csv":
        return _read_csv(text, source)
    records = json_records(text, source)
    chosen = format or _json_format(records, source)
    threads = Threads(source)
    _JSON_READERS[chosen](records, threads)
    return Parsed(chosen, threads.conversations(), threads.non_chat, threads.private)


def _decode(data: bytes, source: Source) -> str:
    """``data`` as text: UTF-8 (a byte-order mark allowed), not binary, not empty."""
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\0" in data:
        raise source.error("binary data (a NUL byte): not a text file",
                           data[:data.index(b"\0")].count(b"\n") + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise source.error("not UTF-8 text", data[:exc.start].count(b"\n") + 1) from exc
    if not text.strip():
        raise source.error("the file is empty")
    return text


def _text_kind(path: Path, text: str) -> str:
    """``csv`` or ``json``, from the extension and the first character."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".json", ".jsonl", ".ndjson"):
        return "csv" if suffix in (".csv", ".tsv") else "json"
    return "json" if text.lstrip()[:1] in ("{", "[") else "csv"


def _json_format(records: list[Record], source: Source) -> str:
    """The JSON format of the first record that shows one (a conversation without messages
    does not)."""
    for line, _, record in records:
        messages = record.get("messages")
        inner = messages[0] if isinstance(messages, list) and messages else {}
        if "message_type" in record or (isinstance(inner, dict) and "message_type" in inner):
            return "chatwoot"
        if "comments" in record:
            return "zendesk"
        if "role" in record or inner:
            return "jsonl"
        if "messages" not in record:
            raise source.error(
                "cannot tell the format: expected chat messages ('messages' or 'role'), a "
                "Chatwoot conversation ('message_type') or a Zendesk ticket ('comments'); "
                f"name it with --format ({', '.join(FORMATS)})", line)
    return "jsonl"  # conversations, all without messages


def _read_openai(records: list[Record], threads: Threads) -> None:
    """JSON lines of OpenAI-style chats: a conversation a line (``messages``), or a message a
    line with its ``conversation_id`` (a conversation's lines may be spread)."""
    for line, where, record in records:
        if "messages" in record:
            raw_id = record.get("id", record.get("conversation_id"))
            name = f"line-{line}" if raw_id is None else \
                conversation_id(raw_id, threads.source, line, field(where, "id"))
            _messages(record, threads.thread(name, line, grouped=False), threads, line, where,
                      _openai_message)
        elif "role" in record:
            _message_line(record, threads, line, where, _openai_message)
        else:
            raise threads.source.error("expected 'messages' (a conversation a line) or 'role' "
                                       "and 'conversation_id' (a message a line)", line, where)


def _openai_message(message: dict[str, Any], thread: list[Message], threads: Threads,
                    line: int, where: str) -> None:
    source = threads.source
    role = required(message, "role", source, line, where)
    name = message.get("name")
    text = text_of(message.get("content"), source, line, field(where, "content"))
    at = timestamp(message.get("timestamp", message.get("created_at")), source, line,
                   field(where, "timestamp"))
    speaker: Speaker | None
    if role in OPENAI_NON_CHAT:
        speaker = None
    elif role == "assistant":
        speaker = "agent" if isinstance(name, str) and name not in ("", "bot") else "bot"
    elif role in ("user", "agent"):
        speaker = "customer" if role == "user" else "agent"
    else:
        raise source.error(f"unknown role {role!r}; expected user, assistant (with a 'name' "
                           "other than 'bot' for a person), agent or system", line,
                           field(where, "role"))
    threads.add(thread, speaker, text, at)


def _read_csv(text: str, source: Source) -> Parsed:
    """CSV with a header: conversation id, author or role, text and (optional) timestamp."""
    check_lines(text, source)
    threads = Threads(source)
    header_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(row for row in reader if any(cell.strip() for cell in row))
        columns = _csv_columns(header, source, reader.line_num)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if any(cell.strip() for cell in row):
                _csv_row(row, columns, header, threads, line)
    except csv.Error as exc:
        raise source.error(f"invalid CSV: {exc}", reader.line_num) from exc
    return Parsed("csv", threads.conversations(), threads.non_chat, threads.private)


def _csv_columns(header: list[str], source: Source, line: int) -> dict[str, int]:
    """The index of each known column in ``header``."""
    names = [h.strip().lower().replace(" ", "_").replace("-", "_") for h in header]
    columns = {}
    for column, accepted in CSV_COLUMNS.items():
        found = next((names.index(a) for a in accepted if a in names), None)
        if found is not None:
            columns[column] = found
        elif column != "timestamp":
            raise source.error(f"no {column} column: the header needs one of "
                               f"{', '.join(accepted)}", line, "header")
    return columns


def _csv_row(row: list[str], columns: dict[str, int], header: list[str], threads: Threads,
             line: int) -> None:
    source = threads.source

    def cell(column: str) -> str:
        index = columns[column]
        if index >= len(row):
            raise source.error("missing field", line, header[index].strip())
        return row[index].strip()

    name = cell("conversation")
    if not name:
        raise source.error("must not be empty", line, header[columns["conversation"]].strip())
    role = cell("role").lower()
    speaker_name = role.split(":", 1)[0].strip()  # "agent:Maria" names the agent
    if speaker_name not in ROLES:
        raise source.error(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", line,
                           header[columns["role"]].strip())
    text = text_of(cell("text"), source, line, header[columns["text"]].strip())
    at = timestamp(cell("timestamp"), source, line, header[columns["timestamp"]].strip()) \
        if "timestamp" in columns else None
    threads.add(threads.thread(name, line, grouped=True), ROLES[speaker_name], text, at)


def _read_chatwoot(records: list[Record], threads: Threads) -> None:
    """Chatwoot's conversation JSON: conversations with their ``messages``, or the messages
    list (``payload``) of its API, each message with its ``conversation_id``."""
    for line, where, record in records:
        if isinstance(record.get("messages"), list):
            name = conversation_id(required(record, "id", threads.source, line, where),
                                   threads.source, line, field(where, "id"))
            _messages(record, threads.thread(name, line, grouped=True), threads, line, where,
                      _chatwoot_message)
        else:
            _message_line(record, threads, line, where, _chatwoot_message)


def _chatwoot_message(message: dict[str, Any], thread: list[Message], threads: Threads,
                      line: int, where: str) -> None:
    source = threads.source
    raw_type = required(message, "message_type", source, line, where)
    kind = CHATWOOT_TYPES.get(raw_type, raw_type) if not isinstance(raw_type, bool) else None
    if kind not in CHATWOOT_TYPES.values():
        raise source.error(f"unknown message_type {raw_type!r}; expected 0 (incoming), "
                           "1 (outgoing), 2 (activity) or 3 (template)", line,
                           field(where, "message_type"))
    text = text_of(message.get("content"), source, line, field(where, "content"))
    at = timestamp(message.get("created_at"), source, line, field(where, "created_at"))
    if kind in ("activity", "template"):
        threads.add(thread, None, text, at)
    elif message.get("private") is True:
        threads.private += 1
    else:
        speaker = "customer" if kind == "incoming" else _chatwoot_sender(message, source, line,
                                                                         where)
        threads.add(thread, speaker, text, at)


def _chatwoot_sender(message: dict[str, Any], source: Source, line: int, where: str) -> Speaker:
    """Who sent an outgoing message: an agent (``user``), a bot, or, with no sender, an
    automation (counted as the bot)."""
    sender = message.get("sender")
    raw = sender.get("type") if isinstance(sender, dict) else message.get("sender_type")
    if raw is None:
        return "bot"
    kind = str(raw).lower().replace("::", "_")
    if kind not in CHATWOOT_SENDERS:
        key = "sender.type" if isinstance(sender, dict) else "sender_type"
        raise source.error(f"unknown sender type {raw!r}; expected contact, user or agent_bot",
                           line, field(where, key))
    return CHATWOOT_SENDERS[kind]


def _read_zendesk(records: list[Record], threads: Threads) -> None:
    """Zendesk tickets with their ``comments`` (the ticket export, or a ticket comments API
    response): the requester is the customer, other authors are agents, bot channels the bot,
    and private comments are dropped."""
    source = threads.source
    for line, where, record in records:
        raw_id = record.get("id")
        name = Path(source.name).stem if raw_id is None else \
            conversation_id(raw_id, source, line, field(where, "id"))
        thread = threads.thread(name, line, grouped=False)
        roles = {user.get("id"): ZENDESK_ROLES.get(str(user.get("role")))
                 for user in record.get("users") or () if isinstance(user, dict)}
        requester = record.get("requester_id")
        for i, comment in _items(record, "comments", line, where, source):
            at_line, key = line_of(comment, line), f"{field(where, 'comments')}[{i}]"
            if not isinstance(comment, dict):
                raise source.error("must be a comment object", at_line, key)
            author = required(comment, "author_id", source, at_line, key)
            requester = author if requester is None else requester  # the first comment's
            body = comment.get("body", comment.get("plain_body"))
            if body is None:
                raise source.error("missing field", at_line, field(key, "body"))
            text = text_of(body, source, at_line, field(key, "body"))
            at = timestamp(comment.get("created_at"), source, at_line, field(key, "created_at"))
            if comment.get("public") is False:
                threads.private += 1
                continue
            via = comment.get("via")
            channel = str(via.get("channel", "")) if isinstance(via, dict) else ""
            speaker: Speaker = "bot" if "bot" in channel else roles.get(author) or \
                ("customer" if author == requester else "agent")
            threads.add(thread, speaker, text, at)


def _messages(record: dict[str, Any], thread: list[Message], threads: Threads, line: int,
              where: str, read: MessageReader) -> None:
    """Read a conversation record's ``messages`` into ``thread``."""
    for i, message in _items(record, "messages", line, where, threads.source):
        at_line, key = line_of(message, line), f"{field(where, 'messages')}[{i}]"
        if not isinstance(message, dict):
            raise threads.source.error("must be a message object", at_line, key)
        read(message, thread, threads, at_line, key)


def _message_line(record: dict[str, Any], threads: Threads, line: int, where: str,
                  read: MessageReader) -> None:
    """Read a record that is one message of the conversation its ``conversation_id`` names."""
    name = conversation_id(required(record, "conversation_id", threads.source, line, where),
                           threads.source, line, field(where, "conversation_id"))
    read(record, threads.thread(name, line, grouped=True), threads, line, where)


def _items(record: dict[str, Any], key: str, line: int, where: str,
           source: Source) -> Iterator[tuple[int, Any]]:
    """The items of the list ``record[key]``, numbered."""
    value = required(record, key, source, line, where)
    if not isinstance(value, list):
        raise source.error("must be a list", line, field(where, key))
    return enumerate(value)


_JSON_READERS: dict[str, Callable[[list[Record], Threads], None]] = {
    "jsonl": _read_openai, "chatwoot": _read_chatwoot, "zendesk": _read_zendesk,
}
