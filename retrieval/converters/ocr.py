"""OCR of a PDF page without a text layer (a scanned page), when ``faq.ocr`` asks for it.

PDFium (pypdfium2) draws the page in grey at :data:`DPI` dots per inch; Debian's
``tesseract-ocr`` reads the picture (a PGM image on its standard input) and writes the text
on its standard output. Tesseract is a program, not a Python package: it is looked up on
``PATH`` (:func:`tesseract`), and a bot that asks for OCR where it is not installed gets an
error saying how to install it. Nothing here runs unless ``faq.ocr`` is on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from retrieval.converters.base import clean

if TYPE_CHECKING:
    import pypdfium2

DPI = 300  # Tesseract reads body text best at 300 dpi
TIMEOUT_S = 120.0  # for one page; a page that takes longer is a warning, not a hang
LANGUAGE = "eng"  # the language data Debian's tesseract-ocr installs
MISSING = ("faq.ocr is on, but Tesseract is not installed (no 'tesseract' on PATH): install "
           "Debian's tesseract-ocr (apt-get install tesseract-ocr), or turn faq.ocr off")


class OcrFailed(Exception):
    """Tesseract could not read a page: the message says why, for a warning."""


def tesseract() -> str | None:
    """The path of the ``tesseract`` program, or None when it is not installed."""
    return shutil.which("tesseract")


def read_page(document: pypdfium2.PdfDocument, index: int, *, program: str,
              timeout: float | None = None) -> str:
    """The text Tesseract reads on page ``index`` (0-based) of ``document``, cleaned as
    converters clean text; ``program`` is the path :func:`tesseract` found. A failure or a
    page that takes over ``timeout`` seconds (default :data:`TIMEOUT_S`) is
    :class:`OcrFailed`."""
    timeout = TIMEOUT_S if timeout is None else timeout
    image = _grey_image(document, index)
    try:
        done = subprocess.run(
            [program, "stdin", "stdout", "-l", LANGUAGE, "--dpi", str(DPI)],
            input=image, capture_output=True, timeout=timeout, check=False,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"})  # one core a page, as CPUs are shared
    except subprocess.TimeoutExpired as exc:
        raise OcrFailed(f"OCR took over {timeout:g} s and was stopped") from exc
    except OSError as exc:
        raise OcrFailed(f"Tesseract could not be run ({exc.strerror or exc})") from exc
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrFailed(f"Tesseract failed (exit status {done.returncode}"
                        + (f": {said[-1]}" if said else "") + ")")
    return clean(done.stdout.decode("utf-8", "replace").replace("\f", "\n"))


def _grey_image(document: pypdfium2.PdfDocument, index: int) -> bytes:
    """Page ``index`` drawn in grey at :data:`DPI`, as a binary PGM image (which Tesseract's
    image library reads from a pipe, and which needs no imaging package to write)."""
    import numpy as np

    page = document[index]
    try:
        bitmap = page.render(scale=DPI / 72, grayscale=True)
        try:
            pixels = bitmap.to_numpy()
            height, width = pixels.shape[:2]
            data = np.ascontiguousarray(pixels.reshape(height, width)).tobytes()
        finally:
            bitmap.close()
    finally:
        page.close()
    return b"P5 %d %d 255\n" % (width, height) + data
