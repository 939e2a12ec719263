"""Passages and how a file's text becomes them: ids, internal notes, chunks of whole sentences.

Every reader (``retrieval.documents`` for YAML, CSV and JSONL, ``retrieval.markdown``, the
converters of ``retrieval.converters`` for PDF, Word, HTML and plain text) adds to one
:class:`PassageBuilder`, which strips internal notes (:func:`strip_internal`), chunks free
text (:func:`chunk_text`), gives each passage its id and remembers where it was written, so
that :func:`check_unique` can name both places of a duplicate id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from urllib.parse import quote

from retrieval.converters.base import Converted, Section
from retrieval.errors import SourceError
from retrieval.sentences import PARAGRAPH_BREAK, Sentence, join_sentences, split_sentences, tail

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INTERNAL = re.compile(r"[\s>*_]*internal(?:\s+notes?)?[*_]*\s*:", re.IGNORECASE)
TITLE_SEPARATOR = " > "  # between a document's title and the headings above a passage
_SITE_NAME = re.compile(r"\s+[|\-\u2013\u2014\u00b7]\s+")  # "Cards | Acme help", "Cards - Acme"


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
    translations: tuple[tuple[str, str], ...] = ()  # (language code, answer) of a FAQ entry

    def translated(self, language: str) -> str | None:
        """The answer in ``language`` when the entry has it (``retrieval.translations``)."""
        return next((text for code, text in self.translations if code == language), None)

    def search_texts(self) -> list[str]:
        """The texts embedded for this passage, its questions first and its passage texts
        last; its score is the best of them."""
        return [*self.question_texts(), *self.passage_texts()]

    def question_texts(self) -> list[str]:
        """The questions it answers (embedded as queries): its question and alternatives."""
        return [*([self.question] if self.question else []), *self.alternatives]

    def passage_texts(self) -> list[str]:
        """Its text (embedded as a passage): question and answer, or title and text; and
        each translation of the answer, so that a question in that language finds it by
        its words too."""
        head = f"{self.title}. {self.text}" if self.title and not self.question else self.text
        return [f"{self.question} {self.text}" if self.question else head,
                *(answer for _, answer in self.translations)]


@dataclass(frozen=True)
class Extension:
    """More wordings for the entry ``entry`` of any FAQ source, and where they were written."""

    entry: str
    alternatives: tuple[str, ...]
    file: str  # the file as errors name it
    where: str  # the item: "[3]" or "line 4"
    line: int | None = None


@dataclass(frozen=True)
class Place:
    """Where a passage was written, as errors name it: a file and line, or a file and page."""

    file: str
    line: int | None = None
    made_up: bool = False  # the passage's id was made from its text, not written

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ChunkSettings:
    words: int = 120
    overlap: int = 30


@dataclass
class PassageBuilder:
    """The passages of one file, in order, each with the :class:`Place` it came from."""

    source: str  # how passages cite the file
    chunking: ChunkSettings
    display: str  # how errors name it
    passages: list[Passage] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set, init=False, repr=False)  # the passages' ids

    def add(self, passage: Passage, place: Place) -> None:
        self.passages.append(passage)
        self.places.append(place)
        self._ids.add(passage.id)

    def qa(self, question: str, answer: str, *, at: tuple[str, int | None],
           id: str | None = None, alternatives: tuple[str, ...] = (),
           category: str = "", translations: tuple[tuple[str, str], ...] = ()) -> None:
        """A question and its answer (``at``: the answer's key path and line, for errors),
        and the answer in other languages. Without an ``id``: the question's slug, all its
        words where its first eight are another question's of this file, then ``-2``..."""
        self.add(Passage(
            id=id or self._unique(slug(question), slug(question, words=None)),
            text=self.shown(answer, at), source=self.source,
            title=question.strip(), question=question.strip(),
            alternatives=alternatives, category=category,
            translations=tuple((code, self.shown(text, at)) for code, text in translations),
        ), Place(self.display, at[1], id is None))

    def _unique(self, first: str, then: str) -> str:
        """``first`` when no passage of this file has it as its id, else ``then``, then
        ``then-2``, ``then-3`` ..."""
        found, n = first if first not in self._ids else then, 1
        while found in self._ids:
            n += 1
            found = f"{then}-{n}"
        return found

    def free_text(self, title: str, text: str, *, at: tuple[str, int | None],
                  id: str | None = None, category: str = "", notes_only: bool = False) -> None:
        """Free text, chunked; ``notes_only``: text that is all internal notes adds nothing
        (else it is an error)."""
        shown = self.shown(text, at, notes_only=notes_only)
        base = id or slug(title or self.source)
        chunks = chunk_text(shown, self.chunking)
        for n, chunk in enumerate(chunks):
            self.add(Passage(
                id=base if len(chunks) == 1 else f"{base}-{n + 1}", text=chunk,
                source=self.source, title=title, category=category,
            ), Place(self.display, at[1], id is None))

    def document(self, converted: Converted, *, name: str, url: str = "",
                 part: str = "", category: str = "") -> None:
        """A converted document's sections as free-text passages: each titled with the
        document's title and its headings, cited with its page where it has one (a web
        page: with its heading's anchor, ``#fees``), with an id made of ``name`` (the
        file's stem) and the headings, ``-2``, ``-3`` ... after the first under the same
        headings. A document that is one of many in its file (a help-center export's
        article) is cited by its ``url`` (when it has one) and named in errors by its
        ``part`` ("article 35")."""
        document = slug(name)
        cited = url or self.source
        within = f", {part}" if part else ""
        for section in converted.sections:
            page = f", page {section.page}" if section.page else ""
            where = f"page {section.page}" if section.page else TITLE_SEPARATOR.join(
                section.headings)
            shown = self.shown(section.text, (": ".join(w for w in (part, where) if w), None),
                               notes_only=True)
            source = cited + _fragment(cited, section.anchor) + page
            base = "-".join([document, *_heading_slugs(section, document)])
            for chunk in chunk_text(shown, self.chunking):
                self.add(Passage(id=self._unique(base, base), text=chunk, source=source,
                                 title=_title(converted.title, section.headings),
                                 category=category),
                         Place(self.display + within + page, made_up=True))

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


def _fragment(source: str, anchor: str) -> str:
    """``#anchor`` when the passage cites a web page and its heading has an anchor."""
    if not anchor or not source.startswith(("http://", "https://")) or "#" in source:
        return ""
    return "#" + quote(anchor, safe="-._~!$&'()*+,;=:@/?")


def _heading_slugs(section: Section, document: str) -> list[str]:
    """The slugs of a section's headings, less a first one that only repeats the file's
    name ("Fees guide" in fees-guide.pdf)."""
    slugs = [slug(h) for h in section.headings if h.strip()]
    return slugs[1:] if slugs[:1] == [document] else slugs


def _title(title: str, headings: Sequence[str]) -> str:
    """A passage's title: the document's, then its headings (a first heading that repeats
    the document's title, or its part before the site's name, is not repeated: "Cards |
    Acme help" and "Cards")."""
    parts = [h.strip() for h in headings if h.strip()]
    if parts and parts[0].casefold() in {
            title.strip().casefold(), _SITE_NAME.split(title.strip(), 1)[0].casefold()}:
        parts.pop(0)
    return TITLE_SEPARATOR.join([title.strip(), *parts] if title.strip() else parts)


def qualified(passages: Sequence[Passage], places: Sequence[Place]) -> list[Passage]:
    """``passages`` where an id made up from the text is made up the same way in another
    file too ("How do I change the name of my ..." in two articles): each such passage's id
    prefixed with its file's name, so that a help center loads with no hand edits; an id
    someone wrote is never changed (a duplicate of it stays an error)."""
    files: dict[str, set[str]] = {}
    for passage, place in zip(passages, places, strict=True):
        files.setdefault(passage.id, set()).add(place.file if place.made_up else "")
    shared = {i for i, found in files.items() if len(found) > 1 and "" not in found}
    return [replace(p, id=f"{slug(PurePath(place.file.split(',')[0]).stem)}-{p.id}")
            if p.id in shared else p for p, place in zip(passages, places, strict=True)]


def check_unique(passages: Sequence[Passage], places: Sequence[Place] = ()) -> None:
    """Refuse two passages with one id, naming where each was written (``places``, one per
    passage; without them, the files the passages cite)."""
    seen: dict[str, Place] = {}
    for n, passage in enumerate(passages):
        place = places[n] if n < len(places) else Place(passage.source)
        if passage.id in seen:
            raise SourceError(f"duplicate FAQ id {passage.id!r}, also at {seen[passage.id]}; "
                              "give one of them another explicit 'id'",
                              file=place.file, line=place.line)
        seen[passage.id] = place


def slug(text: str, *, words: int | None = 8) -> str:
    """A short, stable id made from ``text`` (its first ``words`` words; None: all)."""
    found = re.findall(r"[a-z0-9]+", text.lower())[:words]
    return "-".join(found) or hashlib.sha1(text.encode()).hexdigest()[:10]


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
