"""What a converter makes of a file (:class:`Converted`), the protocol every converter
follows (:class:`Converter`), and the text helpers they share."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from retrieval.errors import SourceError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffe\uffff]")  # not tab, newline, CR, FF


@dataclass(frozen=True)
class Section:
    """A run of a document's text under one heading path ("Fees", "Transfers abroad"),
    on one page where the format has pages (1-based)."""

    headings: tuple[str, ...]
    text: str
    page: int | None = None
    anchor: str = ""  # a web page's fragment that links to its heading ("fees"), or ""


@dataclass(frozen=True)
class Converted:
    """A document read from a file: its title, its sections in order, how many pages it
    has (0 for formats without pages), and what could not be read, each warning naming the
    file (and page) as errors do."""

    title: str
    sections: tuple[Section, ...]
    pages: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadOptions:
    """How documents are read: the bot's ``faq`` settings that concern converters."""

    ocr: bool = False  # read pages without a text layer with Tesseract (``faq.ocr``)


PLAIN = ReadOptions()


class HeadingPath:
    """The headings above the text being read, as a reader meets them in order: each
    heading is under the nearest heading of a higher level before it, so a document that
    starts at level 2, or skips a level, reads right (HTML ``h1``-``h6``, Word's "Heading
    N" styles, a PDF's outline)."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str, str]] = []  # level, title, anchor ("" for none)

    def enter(self, level: int, title: str, anchor: str = "") -> None:
        """A heading of ``level`` (1 is the highest) starts; ``anchor`` links to it."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title, anchor))

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(title for _, title, _ in self._open)

    @property
    def anchor(self) -> str:
        """The anchor of the nearest heading above that has one ("" when none has)."""
        return next((a for _, _, a in reversed(self._open) if a), "")


class Converter(Protocol):
    """Turns one file of the formats it reads into a :class:`Converted` document; a file
    it cannot read is a :class:`~retrieval.errors.SourceError` naming ``display``."""

    suffixes: tuple[str, ...]  # lower case, with the dot
    kind: str  # what `bot validate` calls the format: "PDF", "Word", ...

    def convert(self, path: Path, *, display: str,
                options: ReadOptions = PLAIN) -> Converted: ...


@dataclass(frozen=True)
class Exported:
    """One document of a file that holds many (an article of a help-center export)."""

    document: Converted
    name: str  # the first part of its passages' ids: "zendesk-360001234567"
    url: str  # where it is published: its passages cite it ("" : they cite the file)
    part: str  # how errors name it inside the file: "article 360001234567"


@dataclass(frozen=True)
class Export:
    """What a file of many documents holds: the documents to read, how many were left out
    as drafts, and warnings naming the file (and the document)."""

    kind: str  # what `bot validate` calls the format: "Zendesk", "Intercom"
    documents: tuple[Exported, ...]
    drafts: int = 0
    warnings: tuple[str, ...] = ()


class ExportReader(Protocol):
    """Reads a file that holds many documents (a help center's articles as its API returns
    them), recognised by its content among the files of its suffixes."""

    suffixes: tuple[str, ...]

    def recognises(self, path: Path) -> bool: ...

    def read(self, path: Path, *, display: str) -> Export: ...


def read_bytes(path: Path, display: str) -> bytes:
    """The file's bytes; a missing or unreadable file is a :class:`SourceError`."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError("file not found", file=display) from exc
    except OSError as exc:
        raise SourceError(f"cannot be read ({exc.strerror or exc})", file=display) from exc


def clean(text: str) -> str:
    """``text`` with control characters and non-breaking spaces made plain, line endings
    made ``\\n`` and spaces at line ends dropped."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\xa0", " ").replace("\u00ad", "")  # soft hyphen
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def one_line(text: str) -> str:
    """``text`` with all its spacing made single spaces."""
    return " ".join(text.split())


def table_text(rows: Iterable[Sequence[str]]) -> str:
    """A table as text: the first row is the header; each other row is a paragraph of
    ``header: value`` pairs ("Plan: Basic; Monthly fee: £3"), empty cells left out. A table
    of one row or one column is its cells."""
    table = [[one_line(cell) for cell in row] for row in rows]
    table = [row for row in table if any(row)]
    if not table:
        return ""
    header, body = table[0], table[1:]
    if not body or len(header) < 2:
        return "\n\n".join("; ".join(c for c in row if c) for row in table)
    lines = []
    for row in body:
        pairs = [f"{name}: {value}" if name else value
                 for name, value in zip([*header, *[""] * len(row)], row, strict=False)
                 if value]
        lines.append("; ".join(pairs))
    return "\n\n".join(lines)


def title_from(path: Path) -> str:
    """A title for a document that names none: its file name ("fees-guide.pdf": "fees guide")."""
    return one_line(re.sub(r"[-_.]+", " ", path.stem)) or path.name


def looks_binary(data: bytes) -> bool:
    """Whether ``data`` is not text: NUL bytes (in a file without a UTF-16/32 byte order
    mark) or many control characters in its first 8 KB."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = data[:8192]
    control = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return b"\x00" in sample or control > len(sample) * 0.02
