"""Plain text (.txt): paragraphs separated by blank lines; a short first line is the title.

A file that is not text (NUL bytes, many control characters) or not UTF-8 is a
:class:`~retrieval.errors.SourceError`; a UTF-16 file with a byte order mark is read too.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from retrieval.converters.base import (
    PLAIN,
    Converted,
    ReadOptions,
    Section,
    clean,
    looks_binary,
    one_line,
    read_bytes,
    title_from,
)
from retrieval.errors import SourceError

TITLE_WORDS = 15  # a first line longer than this, or ending a sentence, is text, not a title


class TextConverter:
    """Reads ``.txt`` files."""

    suffixes: tuple[str, ...] = (".txt",)
    kind: str = "text"

    def convert(self, path: Path, *, display: str, options: ReadOptions = PLAIN) -> Converted:
        data = read_bytes(path, display)
        if looks_binary(data):
            raise SourceError("is not a text file (it holds binary data)", file=display)
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        try:
            text = clean(data.decode("utf-16" if utf16 else "utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise SourceError(f"is not UTF-8 text (byte {exc.start}): save it as UTF-8",
                              file=display) from exc
        first, _, rest = text.partition("\n")
        if rest.strip() and _is_title(first):
            return Converted(one_line(first), (Section((), rest.strip()),))
        return Converted(title_from(path), (Section((), text),) if text else ())


def _is_title(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= TITLE_WORDS and not line.rstrip().endswith((".", "!", "?", ":"))
