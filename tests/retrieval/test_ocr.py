"""OCR of PDF pages without a text layer (``faq.ocr``): a real scanned page (a page of text
drawn to a picture, put alone on a PDF page) read back by Debian's tesseract-ocr, and what a
bot is told when OCR is asked for but cannot be done."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pypdfium2
import pytest
from fpdf import FPDF

from bot.definition.loader import load_bot
from retrieval.converters import ocr
from retrieval.converters.base import ReadOptions
from retrieval.documents import ChunkSettings, Document, read_source
from retrieval.errors import SourceError
from retrieval.knowledge import FaqSource, fingerprint
from retrieval.settings import FaqSettings

from ..conftest import MakeBot

CHUNKS = ChunkSettings(words=60, overlap=10)
TYPED = "Our branch in Leeds opens at nine on weekdays. Bring your passport to open an account."
SCANNED = ("Replacement cards arrive within five working days. A lost card is blocked at once "
           "when you call us.")
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Debian's tesseract-ocr is not installed (apt-get install tesseract-ocr, or "
           "scripts/install.sh --dev): the scanned page cannot be read back")


def _scanned_pdf(path: Path) -> None:
    """Two pages: typed text with a text layer, then the same kind of page as a scan: a
    page of text drawn to a grey picture at 200 dpi by PDFium, alone on a PDF page."""
    typed = FPDF(format="A4")
    for text in (TYPED, SCANNED):
        typed.add_page()
        typed.set_font("Helvetica", size=14)
        typed.multi_cell(0, 8, text)
    drawn = pypdfium2.PdfDocument(bytes(typed.output()))
    try:
        picture = drawn[1].render(scale=200 / 72, grayscale=True).to_pil()
    finally:
        drawn.close()
    scan = FPDF(format="A4")
    scan.add_page()
    scan.set_font("Helvetica", size=14)
    scan.multi_cell(0, 8, TYPED)
    scan.add_page()
    scan.image(picture, x=0, y=0, w=scan.w, h=scan.h)
    scan.output(str(path))


def _read(path: Path, *, ocr_on: bool) -> Document:
    return read_source(path, display=f"faq/{path.name}", chunking=CHUNKS,
                       options=ReadOptions(ocr=ocr_on))


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "branch.pdf"
    _scanned_pdf(path)
    return path


def test_a_scanned_page_is_named_and_not_read_when_ocr_is_off(scan: Path) -> None:
    document = _read(scan, ocr_on=False)
    assert [p.source for p in document.passages] == ["faq/branch.pdf, page 1"]
    assert document.warnings == ("faq/branch.pdf, page 2: no text layer (a scanned page? "
                                 "turn faq.ocr on to read it with OCR)",)


@needs_tesseract
def test_ocr_reads_a_scanned_page_back(scan: Path) -> None:
    document = _read(scan, ocr_on=True)
    assert document.warnings == ()
    page_two = [p for p in document.passages if p.source == "faq/branch.pdf, page 2"]
    assert len(page_two) == 1
    read = " ".join(page_two[0].text.split()).lower()
    words = [w.strip(".,").lower() for w in SCANNED.split()]
    found = [w for w in words if w in read]
    assert len(found) >= 0.9 * len(words), (read, set(words) - set(found))
    assert "replacement cards arrive within five working days" in read
    assert document.passages[0].source == "faq/branch.pdf, page 1"


@needs_tesseract
def test_a_document_that_is_all_scans_reads_with_ocr(tmp_path: Path, scan: Path) -> None:
    only = pypdfium2.PdfDocument(scan)
    try:
        only.del_page(0)
        only.save(str(tmp_path / "only.pdf"))
    finally:
        only.close()
    with pytest.raises(SourceError, match=r"^faq/only\.pdf: no page has a text layer \(1 page; "
                                          r"a scanned document\? turn faq\.ocr on"):
        _read(tmp_path / "only.pdf", ocr_on=False)
    (passage,) = _read(tmp_path / "only.pdf", ocr_on=True).passages
    assert "working days" in " ".join(passage.text.split())


def test_ocr_asked_for_without_tesseract_is_a_clear_error(
        scan: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "tesseract", lambda: None)
    with pytest.raises(SourceError) as info:
        _read(scan, ocr_on=True)
    assert str(info.value) == (
        "faq/branch.pdf: page 2 has no text layer: faq.ocr is on, but Tesseract is not "
        "installed (no 'tesseract' on PATH): install Debian's tesseract-ocr (apt-get install "
        "tesseract-ocr), or turn faq.ocr off")


def _program(folder: Path, script: str) -> str:
    path = folder / "fake-tesseract"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize(("script", "warning"), [
    ("echo 'Error opening data file eng.traineddata' >&2; exit 1",
     "no text layer, and Tesseract failed (exit status 1: Error opening data file "
     "eng.traineddata)"),
    (f"exec {sys.executable} -c 'import time; time.sleep(5)'",
     "no text layer, and OCR took over 0.5 s and was stopped"),
    ("cat > /dev/null; printf '\\f'", "no text layer, and OCR found no text on it"),
])
def test_a_page_ocr_cannot_read_is_a_warning_naming_it(
        tmp_path: Path, scan: Path, monkeypatch: pytest.MonkeyPatch, script: str,
        warning: str) -> None:
    program = _program(tmp_path, script)
    monkeypatch.setattr(ocr, "tesseract", lambda: program)
    monkeypatch.setattr(ocr, "TIMEOUT_S", 0.5)
    document = _read(scan, ocr_on=True)
    assert document.warnings == (f"faq/branch.pdf, page 2: {warning}",)
    assert [p.source for p in document.passages] == ["faq/branch.pdf, page 1"]


def test_faq_ocr_is_off_by_default_and_rebuilds_the_index_when_turned_on(
        make_bot: MakeBot) -> None:
    yaml = "name: ocr_bot\nfaq:\n  sources: [faq/]\n  ocr: {}\nchannels:\n  rest:\n" \
           "    auth: none\n"
    on = load_bot(make_bot(yaml.format("true"), name="on")).config.faq
    off = load_bot(make_bot(yaml.replace("  ocr: {}\n", ""), name="off")).config.faq
    assert on is not None and off is not None and (on.ocr, off.ocr) == (True, False)
    assert FaqSettings(sources=("faq/",)).ocr is False
    sources: list[FaqSource] = []
    assert fingerprint(sources, on, "m")["ocr"] is True
    assert "ocr" not in fingerprint(sources, off, "m")
