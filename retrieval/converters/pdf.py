"""PDF: each page's text layer, read with pypdfium2 (PDFium), under the outline's headings:
a page is cut where an outline entry's title stands as a line of it, so the sections of a
manual that start mid-page each have their own heading path.

pypdfium2 was chosen over pypdf by measurement (docs/documents.md): the same text recall on
the PDFs we wrote, about eight times faster. A page with something on it but no text (a
scanned image) is a warning naming the file and page, or, when ``faq.ocr`` is on, read with
Tesseract (``ocr.py``); a damaged or password-protected file is a
:class:`~retrieval.errors.SourceError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.converters import ocr
from retrieval.converters.base import (
    PLAIN,
    Converted,
    HeadingPath,
    ReadOptions,
    Section,
    clean,
    one_line,
    read_bytes,
    title_from,
)
from retrieval.errors import SourceError

if TYPE_CHECKING:
    import pypdfium2

_NO_TEXT = "no text layer (a scanned page? turn faq.ocr on to read it with OCR)"


class PdfConverter:
    """Reads ``.pdf`` files: each page's text, cut at the outline's headings printed on it."""

    suffixes: tuple[str, ...] = (".pdf",)
    kind: str = "PDF"

    def convert(self, path: Path, *, display: str, options: ReadOptions = PLAIN) -> Converted:
        import pypdfium2  # a native library: loaded when a PDF is read, not at start-up

        data = read_bytes(path, display)
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise SourceError(_why(exc), file=display) from exc
        try:
            return self._read(document, path, display, options)
        finally:
            document.close()

    def _read(self, document: pypdfium2.PdfDocument, path: Path, display: str,
              options: ReadOptions) -> Converted:
        import pypdfium2

        pages = len(document)
        starting: dict[int, list[tuple[int, str]]] = {}  # page: the outline entries on it
        for level, title, index in _outline(document):
            starting.setdefault(index, []).append((level + 1, title))  # levels count from 0
        above = HeadingPath()
        sections: list[Section] = []
        warnings: list[str] = []
        for number in range(1, pages + 1):
            try:
                text, has_objects = _page_text(document, number - 1)
            except pypdfium2.PdfiumError as exc:
                warnings.append(f"{display}, page {number}: cannot be read ({exc})")
                _page_parts("", starting.get(number - 1, []), above)  # its headings start
                continue
            if not text and has_objects and options.ocr:
                text, warning = _scanned(document, number, display)
                warnings.extend(warning)
            sections += [Section(headings, part, number) for headings, part
                         in _page_parts(text, starting.get(number - 1, []), above)]
            if not text and has_objects and not options.ocr:
                warnings.append(f"{display}, page {number}: {_NO_TEXT}")
        if not sections and pages:
            how = "OCR found no text either" if options.ocr else \
                "a scanned document? turn faq.ocr on to read it with OCR"
            raise SourceError(f"no page has a text layer ({pages} page{'s' * (pages > 1)}; "
                              f"{how})", file=display)
        title = one_line(str(document.get_metadata_dict().get("Title", "")))
        return Converted(title or title_from(path), tuple(sections), pages, tuple(warnings))


def _page_text(document: pypdfium2.PdfDocument, index: int) -> tuple[str, bool]:
    """A page's text and whether anything at all is drawn on it."""
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range().replace("\x02\r\n", "").replace("\x02", "")
        finally:
            textpage.close()
        has_objects = next(iter(page.get_objects(max_depth=1)), None) is not None
    finally:
        page.close()
    return clean(text), has_objects


def _scanned(document: pypdfium2.PdfDocument, number: int,
             display: str) -> tuple[str, list[str]]:
    """Page ``number``'s text read by OCR, and a warning when none could be read; OCR
    asked for without Tesseract installed is an error naming the page."""
    program = ocr.tesseract()
    if program is None:
        raise SourceError(f"page {number} has no text layer: {ocr.MISSING}", file=display)
    try:
        text = ocr.read_page(document, number - 1, program=program)
    except ocr.OcrFailed as exc:
        return "", [f"{display}, page {number}: no text layer, and {exc}"]
    if not text:
        return "", [f"{display}, page {number}: no text layer, and OCR found no text on it"]
    return text, []


def _page_parts(text: str, entries: Sequence[tuple[int, str]],
                path: HeadingPath) -> list[tuple[tuple[str, ...], str]]:
    """A page's text cut where the titles of the outline entries starting on it stand as
    lines (compared by letters and digits), each part under its heading path (the text above
    the first, under the path in force from the pages before); ``path`` moves on past the
    page's entries. An entry whose title is not a line of the page starts with the next one
    that is (at the top of the page before the first); when none is, the page is under its
    first entry, as a page whose headings are drawn differently from the outline reads best."""
    lines = text.split("\n") if text else []
    keys = [_key(line) for line in lines]
    titles = {_key(title) for _, title in entries} - {""}
    found: dict[int, int] = {}  # a title's line: how many of the entries have started there
    after = 0
    for count, (_, title) in enumerate(entries, start=1):
        line = next((i for i in range(after, len(lines)) if keys[i] == _key(title) != ""),
                    None)
        if line is not None:
            found[line], after = count, line + 1
    if not found:
        first = None
        for level, title in entries:
            path.enter(level, title)
            first = first or path.titles
        whole = "\n".join(w for w, key in zip(lines, keys, strict=True) if key not in titles)
        return [(first or path.titles, whole.strip())] if whole.strip() else []
    parts: list[tuple[tuple[str, ...], str]] = []
    held: list[str] = []
    entered = 0

    def move(upto: int) -> None:
        nonlocal entered
        whole = "\n".join(held).strip()
        if whole:
            parts.append((path.titles, whole))
        held.clear()
        for level, title in entries[entered:upto]:
            path.enter(level, title)
        entered = max(entered, upto)

    move(min(found.values()) - 1)
    for i, written in enumerate(lines):
        if i in found:
            move(found[i])
        elif keys[i] not in titles:
            held.append(written)
    move(len(entries))
    return parts


def _key(line: str) -> str:
    """What a printed heading and its outline title share: letters and digits, in any case
    (``<dir prefix="default">`` is the entry ``dir prefix="default"``)."""
    return "".join(c for c in line.casefold() if c.isalnum())


def _outline(document: pypdfium2.PdfDocument) -> list[tuple[int, str, int]]:
    """The outline (bookmarks): level, title and 0-based page of each entry with a page."""
    entries = []
    for bookmark in document.get_toc():
        destination = bookmark.get_dest()
        index = destination.get_index() if destination is not None else None
        title = one_line(bookmark.get_title() or "")
        if index is not None and title:
            entries.append((bookmark.level, title, index))
    return entries


def _why(exc: Exception) -> str:
    """What a PDFium loading error means for the person whose file it is."""
    import pypdfium2.raw as codes

    code = getattr(exc, "err_code", None)
    if code == codes.FPDF_ERR_PASSWORD:
        return ("is encrypted (it needs a password to open): save a copy without a password "
                "and list that instead")
    if code == codes.FPDF_ERR_SECURITY:
        return "is protected by a security handler PDFium cannot open"
    if code in (codes.FPDF_ERR_FORMAT, codes.FPDF_ERR_FILE):
        return "is not a readable PDF (damaged, cut short, or not a PDF at all)"
    return f"cannot be read as a PDF ({exc})"
