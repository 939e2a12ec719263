"""Which converter reads a file: by its suffix (Haystack's ``FileTypeRouter``, by name rather
than by content type), and, for a file of many documents that shares its suffix with other
formats (a help-center export in ``.json`` or ``.jsonl``), by its content."""

from __future__ import annotations

from pathlib import Path

from retrieval.converters.base import Converter, ExportReader
from retrieval.converters.docx import DocxConverter
from retrieval.converters.help_center import HelpCenterConverter
from retrieval.converters.html import HtmlConverter
from retrieval.converters.pdf import PdfConverter
from retrieval.converters.text import TextConverter

CONVERTERS: tuple[type[Converter], ...] = (PdfConverter, DocxConverter, HtmlConverter,
                                           TextConverter)
SUFFIXES = tuple(suffix for converter in CONVERTERS for suffix in converter.suffixes)
EXPORTS: tuple[type[ExportReader], ...] = (HelpCenterConverter,)
EXPORT_SUFFIXES = tuple(suffix for reader in EXPORTS for suffix in reader.suffixes)


def converter_for(suffix: str) -> Converter | None:
    """A converter for files ending in ``suffix`` (".pdf", any case), or None."""
    for converter in CONVERTERS:
        if suffix.lower() in converter.suffixes:
            return converter()
    return None


def export_reader_for(path: Path) -> ExportReader | None:
    """A reader for ``path`` when its content is an export of many documents (a Zendesk or
    Intercom help center's articles), or None."""
    for reader in EXPORTS:
        if path.suffix.lower() in reader.suffixes and (found := reader()).recognises(path):
            return found
    return None
