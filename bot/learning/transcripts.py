"""The stored form of imported conversations, and reading and writing it.

A bot's past conversations live in ``<bot>/conversations/``: one JSON-lines file per import
(``0001-past.jsonl``, one :class:`Conversation` a line) and ``imports.json``, the list of
imports (the path as typed, the file's SHA-256, its format, when, and the counts). The index
is replaced last, so an import is stored whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from bot.definition.config import typed_path
from bot.errors import TranscriptError
from retrieval.artifacts import write_text_atomic

Speaker = Literal["customer", "agent", "bot"]
SPEAKERS: tuple[str, ...] = get_args(Speaker)
FOLDER = "conversations"
INDEX = "imports.json"
INDEX_FORMAT = 1


@dataclass(frozen=True)
class Message:
    """One turn of a past conversation."""

    speaker: Speaker
    text: str  # already redacted
    at: str | None  # ISO 8601 timestamp when the source had one


@dataclass(frozen=True)
class Conversation:
    """One past conversation and where it came from."""

    id: str  # the source's conversation id, made unique among the bot's imports
    source: str  # provenance: the file name as given and its line, e.g. "past.jsonl:12"
    messages: tuple[Message, ...]

    def key(self) -> str:
        """A digest of who said what, in order: equal for duplicate conversations."""
        turns = [[m.speaker, m.text] for m in self.messages]
        return hashlib.sha256(json.dumps(turns).encode()).hexdigest()


@dataclass(frozen=True)
class ImportRecord:
    """One import as ``imports.json`` lists it."""

    file: str  # the stored JSON-lines file, in the conversations folder
    path: str  # the imported file, as typed
    sha256: str  # of the imported file's bytes
    format: str
    imported_at: str  # ISO 8601, UTC
    counts: Mapping[str, int]


def conversations_dir(bot_root: Path) -> Path:
    """Where a bot's imported conversations are stored."""
    return bot_root / FOLDER


def load_imports(bot_root: Path) -> list[ImportRecord]:
    """The bot's imports, oldest first (none when nothing was imported)."""
    index = conversations_dir(bot_root) / INDEX
    if not index.exists():
        return []
    shown = typed_path(index)
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"cannot be read: {exc}", file=shown) from exc
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"invalid JSON: {exc.msg}", file=shown, line=exc.lineno) from exc
    if not (isinstance(data, dict) and data.get("format") == INDEX_FORMAT
            and isinstance(data.get("imports"), list)):
        raise TranscriptError(f"not an index of imports (format {INDEX_FORMAT})", file=shown)
    try:
        return [ImportRecord(**item) for item in data["imports"]]
    except TypeError as exc:
        raise TranscriptError(f"an import entry is malformed: {exc}", file=shown,
                              path="imports") from exc


def load_conversations(bot_root: Path) -> list[Conversation]:
    """Every stored conversation of every import, in the order they were imported."""
    folder = conversations_dir(bot_root)
    found: list[Conversation] = []
    for record in load_imports(bot_root):
        path = folder / record.file
        shown = typed_path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"stored import cannot be read: {exc}", file=shown) from exc
        found.extend(_conversation(line, shown, number)
                     for number, line in enumerate(lines, 1) if line.strip())
    return found


def store_imports(bot_root: Path,
                  imports: Sequence[tuple[ImportRecord, Sequence[Conversation]]]) -> None:
    """Add ``imports`` to the bot's stored conversations: each file written whole, then the
    index; a failure leaves what was stored before as it was."""
    folder = conversations_dir(bot_root)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for record, conversations in imports:
            path = folder / record.file
            write_text_atomic(path, "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n"
                                        for c in conversations))
            written.append(path)
        records = [asdict(r) for r in [*load_imports(bot_root), *(r for r, _ in imports)]]
        write_text_atomic(folder / INDEX, json.dumps({"format": INDEX_FORMAT, "imports": records},
                                                 indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _conversation(line: str, shown: str, number: int) -> Conversation:
    """A stored line back as a :class:`Conversation`."""
    try:
        data: Any = json.loads(line)
        messages = tuple(_message(m) for m in data["messages"])
        return Conversation(id=str(data["id"]), source=str(data["source"]), messages=messages)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"invalid JSON: {exc.msg}", file=shown, line=number) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise TranscriptError(f"not a stored conversation: {exc!r}", file=shown,
                              line=number) from exc


def _message(data: dict[str, Any]) -> Message:
    speaker, text, at = data["speaker"], data["text"], data["at"]
    if speaker not in SPEAKERS or not isinstance(text, str) or not isinstance(at, str | None):
        raise ValueError(f"bad message {data}")
    return Message(speaker=speaker, text=text, at=at)
