"""Measure pypdf and pypdfium2 on PDFs whose text we wrote (docs/documents.md has the figures).

    .venv/bin/python -m benchmarks.pdf_readers      (writes benchmarks/results/pdf_readers.json)

Writes the PDFs with fpdf2 (``made_documents.py``): prose pages in a core font and in an
embedded TrueType font (DejaVu Sans, when the machine has it), a page in two columns, the
same columns written row by row across the page, a table, and a 60-page file for speed.
Reports, per reader, the share of the source's words found (word recall), of its sentences
found whole and in order (sentence recall), of the table's rows found on one line in order
(row recall), and milliseconds per page.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pypdf
import pypdfium2

from tests.retrieval.made_documents import prose_pdf, sentences, table_pdf, two_column_pdf

TTF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
RESULTS = Path(__file__).parent / "results" / "pdf_readers.json"
ROWS = [["Account", "Monthly fee", "Overdraft rate", "Cash machine"],
        *[[f"Plan {n}", f"£{n * 3}", f"{10 + n}.9%", "free" if n % 2 else "£1.50"]
          for n in range(1, 13)]]


def pypdf_text(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def pypdf_layout(path: Path) -> list[str]:
    return [page.extract_text(extraction_mode="layout") for page in pypdf.PdfReader(path).pages]


def pdfium_text(path: Path) -> list[str]:
    document = pypdfium2.PdfDocument(path)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


READERS: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": pypdf_text, "pypdf layout": pypdf_layout, "pypdfium2": pdfium_text,
}


def _flat(text: str) -> str:
    return " ".join(text.replace("\r", " ").split())


def word_recall(source: str, found: str) -> float:
    want = Counter(re.findall(r"[£€\w.%]+", source.lower()))
    have = Counter(re.findall(r"[£€\w.%]+", found.lower()))
    return sum(min(n, have[w]) for w, n in want.items()) / sum(want.values())


def in_order_recall(parts: list[str], found: str) -> float:
    flat = _flat(found)
    return sum(_flat(p) in flat for p in parts) / len(parts)


def row_recall(rows: list[list[str]], found: str) -> float:
    lines = [_flat(line) for line in found.splitlines()]
    hits = sum(any(re.search(r"\s+".join(map(re.escape, row)), line) for line in lines)
               for row in rows)
    return hits / len(rows)


def main() -> None:
    fonts: list[tuple[str, Path | None]] = [("core font", None)]
    if TTF.exists():
        fonts.append(("TrueType", TTF))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        cases = []
        for label, font in fonts:
            pages = [[" ".join(sentences(5, start=p * 15 + k * 5)) for k in range(3)]
                     for p in range(4)]
            prose = tmp / f"prose-{label}.pdf"
            prose_pdf(prose, pages, headings=[f"Section {n}" for n in range(1, 5)], font=font)
            cases.append((f"prose, 4 pages, {label}",
                          prose, [s for page in pages for p in page for s in [p]], None))
            columns = tmp / f"columns-{label}.pdf"
            paragraphs = [" ".join(sentences(4, start=200 + k * 4)) for k in range(9)]
            two_column_pdf(columns, paragraphs, font=font)
            cases.append((f"two columns, {label}", columns, paragraphs, None))
            rows = tmp / f"rows-{label}.pdf"
            two_column_pdf(rows, paragraphs, font=font, row_order=True)
            cases.append((f"two columns written row by row, {label}", rows, paragraphs, None))
            table = tmp / f"table-{label}.pdf"
            table_pdf(table, ROWS, font=font)
            cases.append((f"table, {label}", table, [" ".join(r) for r in ROWS], ROWS))
        long = tmp / "long.pdf"
        long_pages = [[" ".join(sentences(6, start=p * 12 + k * 6)) for k in range(2)]
                      for p in range(60)]
        prose_pdf(long, long_pages, font=TTF if TTF.exists() else None)

        results: dict[str, dict[str, object]] = {}
        print("| reader | document | word recall | sentence recall | row recall |")
        print("|---|---|---|---|---|")
        for name, read in READERS.items():
            documents: dict[str, object] = {}
            for label, path, parts, rows in cases:
                found = "\n".join(read(path))
                source = " ".join(parts)
                sentence_parts = [s for p in parts for s in re.split(r"(?<=\.) ", p)]
                words, whole = word_recall(source, found), in_order_recall(sentence_parts, found)
                documents[label] = {"word_recall": round(words, 4),
                                    "sentence_recall": round(whole, 4),
                                    "row_recall": round(row_recall(rows, found), 4)
                                    if rows else None}
                row = f"{row_recall(rows, found):.0%}" if rows else ""
                print(f"| {name} | {label} | {words:.1%} | {whole:.0%} | {row} |")
            best = min(_timed(read, long) for _ in range(3))
            results[name] = {"documents": documents, "ms_per_page": round(best / 60 * 1000, 3)}
        print()
        print("| reader | ms per page (60 pages, best of 3) |")
        print("|---|---|")
        for name, row_ in results.items():
            print(f"| {name} | {row_['ms_per_page']:.2f} |")
        RESULTS.write_text(json.dumps({"command": "python -m benchmarks.pdf_readers",
                                       "load_average": list(os.getloadavg()),
                                       "readers": results}, indent=2) + "\n")


def _timed(read: Callable[[Path], list[str]], path: Path) -> float:
    start = time.perf_counter()
    read(path)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
