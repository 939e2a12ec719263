"""FAQ documents: load question/answer pairs and free text from YAML, CSV, Markdown, JSONL.

Each source becomes :class:`Passage` objects with stable ids. Question/answer pairs stay
whole; free text is chunked into passages of whole sentences, about ``chunk_words`` words each,
overlapping by whole sentences of up to ``chunk_overlap`` words. A YAML or JSONL item
``{extends: <entry id>, alternatives: [...]}`` adds wordings to an entry of any source
(:class:`Extension`, merged by :func:`extend` once every source is read).

Internal notes never reach a passage (:func:`strip_internal`): HTML comments ``<!-- ... -->``
and paragraphs that start with ``Internal:`` or ``Internal note:`` (any case, also quoted
with ``>`` or in bold), up to the next blank line, in every format.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from retrieval.errors import SourceError
from retrieval.sentences import (
    PARAGRAPH_BREAK,
    Sentence,
    join_sentences,
    split_sentences,
    tail,
)
from retrieval.yamlio import load_yaml

SUFFIXES = (".yaml", ".yml", ".csv", ".md", ".markdown", ".jsonl")
_QA_KEYS = {"id", "question", "answer", "alternatives", "category", "title", "text"}
_EXTENDS_KEYS = {"extends", "alternatives"}
CHUNKING_RULES = 2  # how free text is chunked and notes stripped: a change rebuilds the index
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INTERNAL = re.compile(r"[\s>*_]*internal(?:\s+notes?)?[*_]*\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: a FAQ answer or a chunk of free text."""

    id: str
    text: str
    source: str
    title: str = ""
    question: str | None = None
    alternatives: tuple[str, ...] = ()
    category: str = ""
    audience: str = "customers"  # "agents": written for the team, never quoted to customers

    def search_texts(self) -> list[str]:
        """The texts embedded for this passage; its score is the best of them."""
        texts = [self.question] if self.question else []
        texts.extend(self.alternatives)
        head = f"{self.title}. {self.text}" if self.title and not self.question else self.text
        texts.append(f"{self.question} {self.text}" if self.question else head)
        return texts


@dataclass(frozen=True)
class Extension:
    """More wordings for the entry ``entry`` of any FAQ source, and where they were written."""

    entry: str
    alternatives: tuple[str, ...]
    file: str  # the file as errors name it
    where: str  # the item: "[3]" or "line 4"
    line: int | None = None


@dataclass(frozen=True)
class Document:
    """What one FAQ file holds: passages, and wordings for entries elsewhere."""

    passages: list[Passage]
    extensions: list[Extension]


@dataclass(frozen=True)
class ChunkSettings:
    words: int = 120
    overlap: int = 30


@dataclass
class _Builder:
    source: str  # how passages cite the file
    chunking: ChunkSettings
    display: str  # how errors name it
    passages: list[Passage] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)

    def qa(self, question: str, answer: str, *, at: tuple[str, int | None],
           id: str | None = None, alternatives: tuple[str, ...] = (),
           category: str = "") -> None:
        """A question and its answer (``at``: the answer's key path and line, for errors)."""
        self.passages.append(Passage(
            id=id or slug(question), text=self.shown(answer, at), source=self.source,
            title=question.strip(), question=question.strip(),
            alternatives=alternatives, category=category,
        ))

    def free_text(self, title: str, text: str, *, at: tuple[str, int | None],
                  id: str | None = None, category: str = "", notes_only: bool = False) -> None:
        """Free text, chunked; ``notes_only``: text that is all internal notes adds nothing
        (else it is an error)."""
        shown = self.shown(text, at, notes_only=notes_only)
        base = id or slug(title or self.source)
        chunks = chunk_text(shown, self.chunking)
        for n, chunk in enumerate(chunks):
            self.passages.append(Passage(
                id=base if len(chunks) == 1 else f"{base}-{n + 1}", text=chunk,
                source=self.source, title=title, category=category,
            ))

    def shown(self, text: str, at: tuple[str, int | None], *, notes_only: bool = False) -> str:
        """``text`` without its internal notes; an error names ``at`` when a comment is left
        open, or when nothing else is left (unless ``notes_only`` allows it)."""
        path, line = at
        if "<!--" in _COMMENT.sub("", text):
            raise SourceError("an HTML comment '<!--' is never closed with '-->'",
                              file=self.display, path=path, line=line)
        shown = strip_internal(text)
        if not shown and text.strip() and not notes_only:
            raise SourceError("is all internal notes (HTML comments or 'Internal note:' "
                              "paragraphs): nothing is left to show customers",
                              file=self.display, path=path, line=line)
        return shown


def slug(text: str) -> str:
    """A short, stable id made from ``text``."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:8]
    return "-".join(words) or hashlib.sha1(text.encode()).hexdigest()[:10]


def strip_internal(text: str) -> str:
    """``text`` without HTML comments and paragraphs that start with ``Internal:`` or
    ``Internal note:`` (to the next blank line), stripped; the rest exactly as written."""
    pieces = PARAGRAPH_BREAK.split(_COMMENT.sub("", text))  # paragraph, break, paragraph...
    kept = [(pieces[n - 1] if n else "") + pieces[n] for n in range(0, len(pieces), 2)
            if pieces[n].strip() and not _INTERNAL.match(pieces[n])]
    return "".join(kept).strip()


def chunk_text(text: str, settings: ChunkSettings) -> list[str]:
    """Split text into chunks of whole sentences of about ``settings.words`` words (a longer
    sentence is a chunk of its own), each after the first starting with the previous one's
    last sentences of at most ``settings.overlap`` words in all."""
    chunks: list[list[Sentence]] = []
    current: list[Sentence] = []
    for sentence in split_sentences(text):
        if current and sum(s.words for s in current) + sentence.words > settings.words:
            chunks.append(current)
            current = tail(current, min(settings.overlap, settings.words - sentence.words))
        current.append(sentence)
    if current:
        chunks.append(current)
    return [join_sentences(chunk) for chunk in chunks]


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
                source: str | None = None) -> Document:
    """Read one FAQ file: its passages and its ``extends`` items, not yet merged (see
    :func:`load_source` for the names)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SourceError(f"unsupported FAQ file type {suffix!r}; use one of {', '.join(SUFFIXES)}",
                          file=display)
    builder = _Builder(display if source is None else source, chunking, display)
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
        _load_markdown(builder, _read_text(path, display))
    if not builder.passages and not builder.extensions:
        raise SourceError("contains no FAQ entries", file=display)
    return Document(builder.passages, builder.extensions)


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


def _add_entry(builder: _Builder, entry: Any, where: str, line: int | None) -> None:
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
        builder.qa(_text(entry, "question", where, display, line),
                   _text(entry, "answer", where, display, line), at=(f"{where}.answer", line),
                   id=entry_id, alternatives=tuple(alternatives), category=category)
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


def _load_csv(builder: _Builder, text: str) -> None:
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


def _load_markdown(builder: _Builder, text: str) -> None:
    """``## Question?`` headings become Q/A pairs; other sections become free-text passages
    (a section of internal notes alone adds nothing). A heading inside an HTML comment is
    part of the comment."""
    title = ""
    heading: str | None = None
    start = 1  # the section's first line
    body: list[str] = []
    in_comment = False

    def flush() -> None:
        content = "\n".join(body).strip()
        if not content:
            return
        at = (heading or "", start)
        if heading and heading.rstrip().endswith("?"):
            builder.qa(heading, content, at=at)
        else:
            builder.free_text(heading or title or builder.source, content, at=at,
                              notes_only=True)

    for number, line in enumerate(text.splitlines(), start=1):
        match = None if in_comment else re.match(r"^(#{1,6})\s+(.*)$", line)
        in_comment = _inside_comment(line, in_comment)
        if match:
            flush()
            body, start = [], number
            if len(match.group(1)) == 1 and not title:
                title, heading = match.group(2).strip(), None
            else:
                heading = match.group(2).strip()
        else:
            body.append(line)
    flush()


def _inside_comment(line: str, inside: bool) -> bool:
    """Whether an HTML comment is open after ``line`` (``inside``: whether one was before)."""
    marks = re.findall(r"<!--|-->", line)  # the last one decides
    return marks[-1] == "<!--" if marks else inside
