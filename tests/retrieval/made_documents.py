"""Real documents for the converter tests and the PDF reader measurement, written by real
tools (fpdf2 for PDF, python-docx for Word, pypdf for encryption), with the text they hold.

Not a test module: ``test_converters.py`` and ``benchmarks/pdf_readers.py`` import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path

import docx
from fpdf import FPDF
from PIL import Image
from pypdf import PdfReader, PdfWriter

_TOPICS = ("card", "transfer", "savings account", "overdraft", "mortgage", "app login",
           "direct debit", "statement", "cheque", "travel notice", "standing order", "PIN")
_VERBS = ("is reviewed within", "is sent within", "can be changed within", "is refunded within",
          "is confirmed within", "expires after")
_UNITS = ("working days", "hours", "minutes", "calendar days")
TABLE_INTRO = "Our fees for each account are in the table below."  # table_pdf's first line


def sentences(count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct, plain support sentences (Latin-1 only, for the core PDF fonts)."""
    found = []
    for n in range(start, start + count):
        topic = _TOPICS[n % len(_TOPICS)]
        verb = _VERBS[(n // len(_TOPICS)) % len(_VERBS)]
        unit = _UNITS[n % len(_UNITS)]
        found.append(f"Request {n + 1} about your {topic} {verb} {n % 9 + 2} {unit}, "
                     f"and the fee is £{(n * 7) % 40 + 1}.")
    return found


def _pdf(font: Path | None = None) -> tuple[FPDF, str]:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_creator("fpdf2")
    if font is None:
        return pdf, "Helvetica"
    pdf.add_font("Body", "", str(font))
    bold = font.with_name(f"{font.stem}-Bold{font.suffix}")
    pdf.add_font("Body", "B", str(bold if bold.exists() else font))
    return pdf, "Body"


def prose_pdf(path: Path, pages: Sequence[Sequence[str]], *,
              headings: Sequence[str] = (), image_pages: Sequence[int] = (),
              font: Path | None = None) -> None:
    """One page per item of ``pages`` (its paragraphs, justified), each under the heading of
    the same position (also a bookmark) when given; the pages numbered in ``image_pages``
    (1-based) hold only an image, no text."""
    pdf, family = _pdf(font)
    for number, paragraphs in enumerate(pages, start=1):
        pdf.add_page()
        if number in image_pages:
            picture = Image.new("RGB", (400, 300), (200, 200, 200))
            pdf.image(picture, x=20, y=20, w=160)
            continue
        if number <= len(headings):
            pdf.start_section(headings[number - 1])
            pdf.set_font(family, size=16)
            pdf.multi_cell(0, 9, headings[number - 1], new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, align="J", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(path))


def manual_pdf(path: Path, sections: Sequence[tuple[int, str, Sequence[str]]], *,
               font: Path | None = None) -> None:
    """A manual whose sections run on from page to page, as a typeset manual's do: each
    ``(level, heading, paragraphs)`` starts where the one before ended (mid-page), its
    heading printed and in the outline at ``level`` (0 the highest)."""
    pdf, family = _pdf(font)
    pdf.add_page()
    for level, heading, paragraphs in sections:
        pdf.start_section(heading, level=level)
        pdf.set_font(family, size=15 - 2 * level)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(path))


def two_column_pdf(path: Path, paragraphs: Sequence[str], *, font: Path | None = None,
                   row_order: bool = False) -> None:
    """One page of text in two balanced columns, the first column written first; with
    ``row_order``, each line is placed by hand and the page written row by row across both
    columns (as some publishing tools write), so the file's order is not the reading order."""
    pdf, family = _pdf(font)
    pdf.add_page()
    pdf.set_font(family, size=10)
    if not row_order:
        with pdf.text_columns(ncols=2, gutter=8, balance=True) as columns:
            for paragraph in paragraphs:
                columns.write(paragraph + "\n\n")
        pdf.output(str(path))
        return
    width = (pdf.epw - 8) / 2
    lines: list[str] = []
    for paragraph in paragraphs:
        lines.extend(pdf.multi_cell(width, 5, paragraph, dry_run=True, output="LINES"))
        lines.append("")
    half = (len(lines) + 1) // 2
    for row, (left, right) in enumerate(zip_longest(lines[:half], lines[half:], fillvalue="")):
        y = pdf.t_margin + 5 * (row + 1)
        for x, line in ((pdf.l_margin, left), (pdf.l_margin + width + 8, right)):
            if line:
                pdf.text(x, y, line)
    pdf.output(str(path))


def table_pdf(path: Path, rows: Sequence[Sequence[str]], *, font: Path | None = None) -> None:
    """A page with one sentence and a table (the first row is its header)."""
    pdf, family = _pdf(font)
    pdf.add_page()
    pdf.set_font(family, size=10)
    pdf.multi_cell(0, 6, TABLE_INTRO, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table() as table:
        for row in rows:
            cells = table.row()
            for cell in row:
                cells.cell(cell)
    pdf.output(str(path))


def encrypt_pdf(source: Path, target: Path, password: str = "s3cret") -> None:
    """``source`` encrypted with a user password (RC4: no crypto library needed)."""
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner",
                   algorithm="RC4-128")
    with target.open("wb") as out:
        writer.write(out)


def word_document(path: Path, *, title: str, blocks: Sequence[tuple[str, object]]) -> None:
    """A .docx file: its core title, then ``blocks`` in order: ``("title", text)``,
    ``("heading N", text)``, ``("text", text)``, ``("bullet", text)`` or ``("table", rows)``
    (the first row is the header)."""
    document = docx.Document()
    document.core_properties.title = title
    for kind, content in blocks:
        if kind == "title":
            document.add_heading(str(content), level=0)
        elif kind.startswith("heading"):
            document.add_heading(str(content), level=int(kind.split()[1]))
        elif kind == "bullet":
            document.add_paragraph(str(content), style="List Bullet")
        elif kind == "table":
            rows = list(content)  # type: ignore[call-overload]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        else:
            document.add_paragraph(str(content))
    document.save(str(path))
