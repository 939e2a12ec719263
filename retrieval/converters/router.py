"""Which converter reads a file, chosen by its suffix (Haystack's ``FileTypeRouter``, by
name rather than by content type)."""

from __future__ import annotations

from retrieval.converters.base import Converter
from retrieval.converters.docx import DocxConverter
from retrieval.converters.html import HtmlConverter
from retrieval.converters.pdf import PdfConverter
from retrieval.converters.text import TextConverter

CONVERTERS: tuple[type[Converter], ...] = (PdfConverter, DocxConverter, HtmlConverter,
                                           TextConverter)
SUFFIXES = tuple(suffix for converter in CONVERTERS for suffix in converter.suffixes)


def converter_for(suffix: str) -> Converter | None:
    """A converter for files ending in ``suffix`` (".pdf", any case), or None."""
    for converter in CONVERTERS:
        if suffix.lower() in converter.suffixes:
            return converter()
    return None
