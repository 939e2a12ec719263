"""FAQ documents: load question/answer pairs and free text from YAML, CSV, Markdown, JSONL,
and the documents a team already has: PDF, Word (.docx), HTML, plain text, and help-center
exports (Zendesk Guide and Intercom articles as their APIs return them, in .json or .jsonl).

Each source becomes :class:`Passage` objects with stable ids (``retrieval.passages``).
Question/answer pairs stay whole; free text is chunked into passages of whole sentences, about
``chunk_words`` words each, overlapping by whole sentences of up to ``chunk_overlap`` words. A
YAML or JSONL item ``{extends: <entry id>, alternatives: [...]}`` adds wordings to an entry of
any source (:class:`Extension`, merged by :func:`extend` once every source is read); an
entry's ``question`` and ``answer`` may be written in several languages
(``retrieval.translations``). Markdown
is read by ``retrieval.markdown``; PDF, Word, HTML and text files by the converters of
``retrieval.converters`` (one per format, chosen by suffix), whose sections become free-text
passages (:meth:`PassageBuilder.document`).

Internal notes never reach a passage (:func:`strip_internal`): HTML comments ``<!-- ... -->``
and paragraphs that start with ``Internal:`` or ``Internal note:`` (any case, also quoted
with ``>`` or in bold), up to the next blank line, in every format.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from retrieval.converters.base import PLAIN, ExportReader, ReadOptions
from retrieval.converters.router import EXPORT_SUFFIXES, converter_for, export_reader_for
from retrieval.converters.router import SUFFIXES as DOCUMENT_SUFFIXES
from retrieval.errors import EmptySourceError, SourceError
from retrieval.markdown import load_markdown
from retrieval.passages import (  # noqa: F401  (re-exported: the names every reader uses)
    ChunkSettings,
    Extension,
    Passage,
    PassageBuilder,
    Place,
    check_unique,
    chunk_text,
    qualified,
    slug,
    strip_internal,
)
from retrieval.translations import localized, same_first_language
from retrieval.yamlio import load_yaml

SUFFIXES = tuple(dict.fromkeys((".yaml", ".yml", ".csv", ".md", ".markdown", ".jsonl",
                                 *DOCUMENT_SUFFIXES, *EXPORT_SUFFIXES)))
_KINDS = {".yaml": "YAML", ".yml": "YAML", ".csv": "CSV", ".md": "Markdown",
          ".markdown": "Markdown", ".jsonl": "JSONL"}
_QA_KEYS = {"id", "question", "answer", "alternatives", "category", "title", "text"}
_EXTENDS_KEYS = {"extends", "alternatives"}
# How free text is chunked, notes stripped, Markdown cleaned and ids made: a change rebuilds
# the index. 3: Markdown front matter, Liquid/Hugo tags, bold, HTML tags and Q:/A: labels.
# 4: HTML headings nest by level (an h2 after an h2 is its sibling), so such pages' ids change.
# 5: Word headings nest as HTML's do (a "Heading 2" after a "Heading 2" is its sibling); PDF
# pages are cut at the outline's headings printed on them; a page's h1 that repeats its
# title before the site's name ("Cards | Acme help") is not repeated in passages' titles.
# 6: Markdown sections are a document's (ids and titles with the file and the headings above
# them); kramdown attributes, backslash escapes and links to the site's own pages removed;
# a made-up id that two files share is prefixed with each file's name.
# 7: an entry's translated answers are search rows of their own (retrieval/passages.py).
CHUNKING_RULES = 7


@dataclass(frozen=True)
class Document:
    """What one FAQ file holds: passages (each with the place it was written), wordings
    for entries elsewhere, and, for a converted document (PDF, Word, HTML, text), its kind,
    its pages and what could not be read; an export holds ``documents`` (its published
    articles) and left out ``drafts``."""

    passages: list[Passage]
    extensions: list[Extension]
    places: list[Place] = field(default_factory=list)
    kind: str = ""  # the file's format, as `bot validate` names it: "YAML", "PDF", "Word"...
    pages: int = 0
    warnings: tuple[str, ...] = ()
    documents: int = 1
    drafts: int = 0


def load_source(path: Path, *, display: str, chunking: ChunkSettings,
                source: str | None = None) -> list[Passage]:
    """Load one FAQ file on its own (its ``extends`` items may only name its own entries);
    errors name it as ``display`` (with the entry and the line where known), passages cite
    it as ``source`` (default: ``display``)."""
    document = read_source(path, display=display, chunking=chunking, source=source)
    return extend(document.passages, document.extensions)


def extend(passages: list[Passage], extensions: list[Extension]) -> list[Passage]:
    """``passages`` with each extension's alternatives added to the entry it names (those
    the entry has already, case and spacing aside, once); an unknown id is an error naming
    the file and item."""
    position = {p.id: n for n, p in enumerate(passages)}
    merged = list(passages)
    for extension in extensions:
        n = position.get(extension.entry)
        if n is None:
            close = difflib.get_close_matches(extension.entry, list(position), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise SourceError(f"no FAQ entry has the id {extension.entry!r}{hint}",
                              file=extension.file, path=f"{extension.where}.extends",
                              line=extension.line)
        have = {" ".join(t.lower().split()) for t in (merged[n].question or "",
                                                      *merged[n].alternatives)}
        added = []
        for text in extension.alternatives:
            key = " ".join(text.lower().split())
            if key not in have:
                have.add(key)
                added.append(text.strip())
        merged[n] = replace(merged[n], alternatives=(*merged[n].alternatives, *added))
    return merged


def read_source(path: Path, *, display: str, chunking: ChunkSettings,
                source: str | None = None, options: ReadOptions = PLAIN) -> Document:
    """Read one FAQ file: its passages and its ``extends`` items, not yet merged (see
    :func:`load_source` for the names; ``options``: how converters read documents)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SourceError(f"unsupported FAQ file type {suffix!r}; use one of {', '.join(SUFFIXES)}",
                          file=display)
    builder = PassageBuilder(display if source is None else source, chunking, display)
    exported = export_reader_for(path)
    if exported is not None:
        return _read_export(exported, builder, path)
    converter = converter_for(suffix)
    if converter is not None:
        converted = converter.convert(path, display=display, options=options)
        builder.document(converted, name=path.stem)
        if not builder.passages:
            raise EmptySourceError("has no text to read", file=display)
        return Document(builder.passages, [], builder.places, converter.kind, converted.pages,
                        converted.warnings)
    if suffix in (".yaml", ".yml"):
        data = load_yaml(path, display=display)
        entries = data.get("faq") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise SourceError("must be a list of entries (or a mapping with a 'faq' list)",
                              file=display)
        lines = getattr(entries, "item_lines", [])
        for i, entry in enumerate(entries):
            _add_entry(builder, entry, f"[{i}]", lines[i] if i < len(lines) else None)
    elif suffix == ".jsonl":
        for number, line in enumerate(_read_text(path, display).splitlines(), start=1):
            if line.strip():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"invalid JSON: {exc.msg}", file=display, line=number) \
                        from exc
                _add_entry(builder, entry, f"line {number}", number)
    elif suffix == ".csv":
        _load_csv(builder, _read_text(path, display))
    else:
        load_markdown(builder, _read_text(path, display), name=path.stem)
    if not builder.passages and not builder.extensions:
        raise EmptySourceError("contains no FAQ entries", file=display)
    return Document(builder.passages, builder.extensions, builder.places, _KINDS[suffix])


def _read_export(reader: ExportReader, builder: PassageBuilder, path: Path) -> Document:
    """A help-center export: each published article a document, cited by its address."""
    export = reader.read(path, display=builder.display)
    for item in export.documents:
        builder.document(item.document, name=item.name, url=item.url, part=item.part)
    if not builder.passages:
        drafts = f" ({export.drafts} draft{'s' * (export.drafts > 1)} left out)" \
            if export.drafts else ""
        raise SourceError(f"has no published article with text to read{drafts}",
                          file=builder.display)
    return Document(builder.passages, [], builder.places, export.kind, 0, export.warnings,
                    len(export.documents), export.drafts)


def _read_text(path: Path, display: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SourceError("file not found", file=display) from exc
    except UnicodeDecodeError as exc:
        raise SourceError("not UTF-8 text", file=display) from exc


def _text(entry: dict[str, Any], key: str, where: str, display: str, line: int | None) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SourceError("must be a non-empty string", file=display, path=f"{where}.{key}",
                          line=line)
    return value


def _add_entry(builder: PassageBuilder, entry: Any, where: str, line: int | None) -> None:
    display = builder.display
    if not isinstance(entry, dict):
        raise SourceError("must be a mapping with question/answer or title/text", file=display,
                          path=where, line=line)
    if "extends" in entry:
        builder.extensions.append(_extension(entry, where, display, line))
        return
    unknown = sorted(set(entry) - _QA_KEYS)
    if unknown:
        valid = ", ".join(sorted(_QA_KEYS))
        raise SourceError(f"unknown key {unknown[0]!r}; valid keys are: {valid}",
                          file=display, path=where, line=line)
    alternatives = entry.get("alternatives", [])
    if not isinstance(alternatives, list) or not all(isinstance(a, str) for a in alternatives):
        raise SourceError("must be a list of strings", file=display, path=f"{where}.alternatives",
                          line=line)
    entry_id = entry.get("id")
    if entry_id is not None and not (isinstance(entry_id, str) and entry_id.strip()):
        raise SourceError("must be a non-empty string", file=display, path=f"{where}.id", line=line)
    category = str(entry.get("category", ""))
    if "question" in entry or "answer" in entry:
        question, answer = (localized(entry.get(key), path=f"{where}.{key}", display=display,
                                      line=line) for key in ("question", "answer"))
        same_first_language(question, answer, path=where, display=display, line=line)
        builder.qa(question.text, answer.text, at=(f"{where}.answer", line), id=entry_id,
                   alternatives=(*alternatives, *(text for _, text in question.others)),
                   category=category, translations=answer.others)
    else:
        builder.free_text(str(entry.get("title", "")), _text(entry, "text", where, display, line),
                          at=(f"{where}.text", line), id=entry_id, category=category)


def _extension(entry: dict[str, Any], where: str, display: str, line: int | None) -> Extension:
    """An item ``{extends: <entry id>, alternatives: [...]}``."""
    unknown = sorted(set(entry) - _EXTENDS_KEYS)
    if unknown:
        raise SourceError(f"unknown key {unknown[0]!r}; an 'extends' item has only 'extends' "
                          "and 'alternatives'", file=display, path=where, line=line)
    target = _text(entry, "extends", where, display, line).strip()
    alternatives = entry.get("alternatives")
    if not (isinstance(alternatives, list) and alternatives
            and all(isinstance(a, str) and a.strip() for a in alternatives)):
        raise SourceError("must be a non-empty list of non-empty strings", file=display,
                          path=f"{where}.alternatives", line=line)
    return Extension(target, tuple(alternatives), display, where, line)


def _load_csv(builder: PassageBuilder, text: str) -> None:
    reader = csv.DictReader(io.StringIO(text))
    fields = set(reader.fieldnames or [])
    if not {"question", "answer"} <= fields:
        raise SourceError("CSV needs a header with 'question' and 'answer' columns (optional: "
                          "id, category, alternatives separated by '|')", file=builder.display,
                          line=1)
    for row in reader:
        line = reader.line_num
        if not (row.get("question") or "").strip() or not (row.get("answer") or "").strip():
            raise SourceError("question and answer must not be empty", file=builder.display,
                              line=line)
        alternatives = tuple(a.strip() for a in (row.get("alternatives") or "").split("|")
                             if a.strip())
        builder.qa(row["question"], row["answer"], at=("answer", line),
                   id=(row.get("id") or "").strip() or None,
                   alternatives=alternatives, category=(row.get("category") or "").strip())
