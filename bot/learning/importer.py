"""Import past conversations: read each file, drop what is not a customer conversation, mask
personal data, drop duplicates, and store every file of the import or none.

Dropped on the way (and counted): empty messages, system and activity messages, private
notes, consecutive repeats of a message, conversations without a customer message, and
conversations already stored (the same speakers and redacted texts). Conversations the bot
answered without an agent are kept; their replies say speaker ``bot``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.errors import TranscriptError
from bot.learning.formats import FORMATS, Parsed, parse, read_bytes
from bot.learning.transcripts import (
    Conversation,
    ImportRecord,
    Message,
    conversations_dir,
    load_conversations,
    load_imports,
    store_imports,
)
from bot.sessions.redaction import find_pii, redact


@dataclass(frozen=True)
class ImportCounts:
    """What one file gave, and what was dropped on the way."""

    conversations: int = 0  # stored
    messages: int = 0  # stored
    duplicates: int = 0  # conversations stored before, or earlier in this import
    bot_only: int = 0  # stored conversations the bot answered with no agent reply
    redacted: int = 0  # personal-data items masked in what was stored
    no_customer: int = 0  # conversations without a customer message
    empty: int = 0  # empty messages
    non_chat: int = 0  # system, tool, activity and template messages
    private: int = 0  # private notes
    repeated: int = 0  # consecutive repeats of the same message, collapsed


@dataclass(frozen=True)
class FileReport:
    """One file of an import."""

    path: str  # as typed
    format: str  # "" when skipped
    stored: Path | None  # the stored JSON-lines file; None when skipped
    counts: ImportCounts
    skipped: str = ""  # why nothing was stored: this content was imported before


@dataclass(frozen=True)
class ImportReport:
    """What ``bot import`` did, file by file."""

    files: tuple[FileReport, ...]

    @property
    def conversations(self) -> int:
        return sum(f.counts.conversations for f in self.files)

    @property
    def messages(self) -> int:
        return sum(f.counts.messages for f in self.files)


def import_files(bot_root: Path, files: Sequence[Path], *,
                 format: str | None = None) -> ImportReport:
    """Import ``files`` into the bot folder ``bot_root``: every file is read and checked
    before anything is written, and a bad one raises :class:`TranscriptError` with nothing
    stored. A file whose content was imported before is skipped, saying so."""
    if format is not None and format not in FORMATS:
        raise TranscriptError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    earlier = load_imports(bot_root)
    stored = load_conversations(bot_root)
    seen = {c.key() for c in stored}
    taken = {c.id for c in stored}
    imported = {r.sha256: f"already imported as {r.file} on {r.imported_at[:10]}"
                for r in earlier}
    number = max((_number(r.file) for r in earlier), default=0)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    reports: list[FileReport] = []
    batch: list[tuple[ImportRecord, list[Conversation]]] = []
    for path in files:
        data = read_bytes(path)
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 in imported:
            reports.append(FileReport(str(path), "", None, ImportCounts(), imported[sha256]))
            continue
        parsed = parse(data, path, format=format)
        conversations, counts = _clean(parsed, seen, taken)
        number += 1
        name = f"{number:04d}-{_slug(path.stem)}.jsonl"
        batch.append((ImportRecord(file=name, path=str(path), sha256=sha256,
                                   format=parsed.format, imported_at=now,
                                   counts=asdict(counts)), conversations))
        imported[sha256] = f"the same content as {path} in this import"
        reports.append(FileReport(str(path), parsed.format, conversations_dir(bot_root) / name,
                                  counts))
    if batch:
        store_imports(bot_root, batch)
    return ImportReport(tuple(reports))


def _clean(parsed: Parsed, seen: set[str],
           taken: set[str]) -> tuple[list[Conversation], ImportCounts]:
    """The conversations worth keeping, redacted (ids too: some exports key conversations by
    e-mail or phone), each with an id no other stored one has (``seen``: the keys of kept
    conversations, ``taken``: their ids; both updated)."""
    tally = Counter(non_chat=parsed.non_chat, private=parsed.private)
    kept: list[Conversation] = []
    for conversation in parsed.conversations:
        messages, redacted = _clean_messages(conversation.messages, tally)
        speakers = {m.speaker for m in messages}
        if "customer" not in speakers:
            tally["no_customer"] += 1
            continue
        cleaned = Conversation(id=_unique(redact(conversation.id), taken),
                               source=conversation.source, messages=tuple(messages))
        if cleaned.key() in seen:
            tally["duplicates"] += 1
            continue
        seen.add(cleaned.key())
        taken.add(cleaned.id)
        kept.append(cleaned)
        tally.update(conversations=1, messages=len(messages), redacted=redacted,
                     bot_only=int("bot" in speakers and "agent" not in speakers))
    return kept, ImportCounts(**tally)


def _clean_messages(messages: Sequence[Message],
                    tally: Counter[str]) -> tuple[list[Message], int]:
    """Messages with text, redacted, repeats collapsed; and how many items were masked."""
    kept: list[Message] = []
    redacted = 0
    for message in messages:
        text = message.text.strip()
        if not text:
            tally["empty"] += 1
            continue
        found = len(find_pii(text))
        text = redact(text) if found else text
        if kept and (kept[-1].speaker, kept[-1].text) == (message.speaker, text):
            tally["repeated"] += 1
            continue
        redacted += found
        kept.append(Message(speaker=message.speaker, text=text, at=message.at))
    return kept, redacted


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... when a stored conversation has it."""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _slug(stem: str) -> str:
    return re.sub(r"[^\w.-]+", "_", stem).strip("._") or "import"


def _number(file: str) -> int:
    prefix = file.split("-", 1)[0]
    return int(prefix) if prefix.isdigit() else 0
