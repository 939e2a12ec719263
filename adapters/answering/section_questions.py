"""Training questions for the answer policy made from documents' headings, so that a bot whose
knowledge is documents only (manuals, help-center pages: passages without a question) still
gets a learned decision instead of a bare cosine threshold.

Every section of a document (the passages under one heading path, ``Passage.title``
"Document > Chapter > Section") is asked its own heading, numbering stripped ("2.7.
PERFORMANCE NOTES" -> "PERFORMANCE NOTES"), followed by the document's title ("Rules, The
Ninja build system") and, where it names one topic of the bot's alone (no other section has
that heading, and it has two content words or more: not "Permissions", "Overview"), on its
own too; each twice:

- covered: the section's passages are scored by their text alone (the vector of the text
  without its title, which holds the heading): a customer's question finds a section through
  what it says, not through a heading it has never seen; right: the section's passages and
  those of the sections under it;
- uncovered: the section and the sections under it left out of the index; nothing is right
  (weighed ``UNCOVERED_WEIGHT``, as an entry's question asked so).

As for an entry's question, each is scored as if the heading were not written: its words
count neither as the bot's vocabulary nor as the passage's own. A section directly under
the document's title (no heading of its own) is not asked: its "question" would be the
document's name. Used in bots without intents (``policy_data``), where nothing else
teaches the decision what a question about a document looks like.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from adapters.answering.answer_policy import Example
from adapters.answering.evidence import EvidenceBuilder, content_words
from adapters.answering.knowledge_questions import UNCOVERED_WEIGHT, unwritten_evidence
from adapters.answering.masked_search import MaskedSearch
from retrieval.documents import Passage
from retrieval.embedder import Embedder
from retrieval.index import Hit
from retrieval.passages import TITLE_SEPARATOR

_NUMBERING = re.compile(r"^\s*(?:(?:\d+|[A-Z])(?:\.\d+)*\.?|[IVX]+\.)\s+")


@dataclass(frozen=True)
class Section:
    """The passages under one heading path (``owners``, positions in the index), the
    questions its heading is asked as, and the passages under it at any depth (``under``)."""

    title: str
    questions: tuple[str, ...]
    owners: tuple[int, ...]
    under: tuple[int, ...]


def heading_of(title: str) -> str:
    """A heading path's last heading, its numbering stripped ("" for a document's title)."""
    parts = title.split(TITLE_SEPARATOR)
    return _NUMBERING.sub("", parts[-1]).strip() if len(parts) > 1 else ""


def document_sections(passages: Sequence[Passage]) -> list[Section]:
    """The sections of the documents among ``passages`` (those without a question)."""
    by_title: dict[str, list[int]] = {}
    for n, passage in enumerate(passages):
        if passage.question is None and passage.title:
            by_title.setdefault(passage.title, []).append(n)
    heading_of_title = {title: heading_of(title) for title in by_title}
    headings = Counter(h.casefold() for h in heading_of_title.values())
    sections = []
    for title, owners in by_title.items():
        heading = heading_of_title[title]
        if not heading:
            continue
        document = title.split(TITLE_SEPARATOR)[0].strip()
        under = [n for t, found in by_title.items()
                 if t == title or t.startswith(title + TITLE_SEPARATOR) for n in found]
        alone = (heading,) if headings[heading.casefold()] == 1 and \
            len(content_words(heading)) >= 2 else ()
        sections.append(Section(title, (*alone, f"{heading}, {document}"), tuple(owners),
                                tuple(sorted(under))))
    return sections


def section_examples(sections: Sequence[Section], search: MaskedSearch, embedder: Embedder,
                     evidence: EvidenceBuilder, k: int) -> list[Example]:
    """Each section's questions asked covered and uncovered (no intent classifier)."""
    if not sections:
        return []
    passages = search.index.passages
    vectors = embedder.embed([text for section in sections for text in section.questions])
    examples: list[Example] = []
    at = 0  # the first of the section's questions' vectors
    for section in sections:  # as if the heading were not written: the parent's title
        parent = section.title.rsplit(TITLE_SEPARATOR, 1)[0]
        unwritten = {passages[n].id: replace(passages[n], title=parent) for n in section.owners}
        own = unwritten_evidence(evidence, [(passages[n], unwritten[passages[n].id])
                                            for n in section.owners])
        right = frozenset(f"faq:{passages[n].id}" for n in section.under)
        left_out = np.isin(search.owners, section.under)
        asked = section.questions
        for text, vector in zip(asked, vectors[at:at + len(asked)], strict=True):
            found = [Hit(unwritten.get(h.passage.id, h.passage), h.score)
                     for h in search.search(vector, k)]
            examples.append(Example(tuple(own.candidates(text, found, None, ())), right))
            others = search.search(vector, k, without=left_out)
            examples.append(Example(tuple(own.candidates(text, others, None, ())),
                                    frozenset(), UNCOVERED_WEIGHT))
        at += len(asked)
    return examples
