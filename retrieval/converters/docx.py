"""Word (.docx): paragraphs in order, headings by their style ("Heading 1" ... "Heading 9",
or a style based on one), list items as ``- item``, tables as rows of ``header: value``,
read with python-docx. A heading is under the nearest heading of a higher level before it,
as in HTML: a document that starts at "Heading 2", or skips a level, reads right.

The title is the paragraph in the "Title" style, else the file's title property, else the
file name. Headers, footers, comments and text boxes are not read.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.converters.base import (
    PLAIN,
    Converted,
    HeadingPath,
    ReadOptions,
    Section,
    clean,
    one_line,
    read_bytes,
    table_text,
    title_from,
)
from retrieval.errors import SourceError

if TYPE_CHECKING:
    from docx.document import Document
    from docx.styles.style import CharacterStyle
    from docx.table import Table

_HEADING = re.compile(r"heading (\d)", re.IGNORECASE)
_LIST = re.compile(r"list", re.IGNORECASE)


class DocxConverter:
    """Reads ``.docx`` files (Word 2007 and later; an old binary ``.doc`` is refused)."""

    suffixes: tuple[str, ...] = (".docx",)
    kind: str = "Word"

    def convert(self, path: Path, *, display: str, options: ReadOptions = PLAIN) -> Converted:
        data = read_bytes(path, display)
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise SourceError("is not a Word .docx file (it is not a zip package; an old .doc "
                              "file? save it as .docx)", file=display)
        import docx  # loaded when a Word file is read, not at start-up

        try:
            document = docx.Document(io.BytesIO(data))
        except Exception as exc:  # python-docx has no one family for a damaged package
            raise SourceError(f"is not a readable Word .docx file ({type(exc).__name__}: "
                              f"{exc})", file=display) from exc
        return _read(document, path)


def _read(document: Document, path: Path) -> Converted:
    from docx.table import Table

    title = ""
    headings = HeadingPath()
    blocks: list[str] = []
    sections: list[Section] = []

    def flush() -> None:
        text = clean("\n\n".join(blocks))
        if text:
            sections.append(Section(headings.titles, text))
        blocks.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            blocks.append(table_text(_rows(block)))
            continue
        text = one_line(block.text)
        style = block.style.name if block.style is not None else ""
        if not text:
            continue
        level = _heading_level(block.style)
        if style == "Title" and not title:
            title = text
        elif level:
            flush()
            headings.enter(level, text)
        elif _LIST.search(style or ""):  # List Bullet, List Number, List Paragraph
            blocks.append(f"- {text}")
        else:
            blocks.append(clean(block.text))
    flush()
    title = title or one_line(document.core_properties.title or "") or title_from(path)
    return Converted(title, tuple(sections))


def _heading_level(style: CharacterStyle | None) -> int:
    """The heading level of a paragraph style ("Heading 2": 2), or of the style it is based
    on, nearest first; 0 when it is not a heading."""
    seen = 0
    while style is not None and seen < 10:  # a loop of base styles ends
        match = _HEADING.fullmatch(style.name or "")
        if match:
            return int(match.group(1))
        style, seen = style.base_style, seen + 1
    return 0


def _rows(table: Table) -> list[list[str]]:
    """A table's rows as text, a merged cell once."""
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text)
        rows.append(cells)
    return rows
