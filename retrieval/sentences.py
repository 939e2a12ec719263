"""Whole sentences: split text into them, join them back, pick the ones that answer a question.

Free-text FAQ passages are chunked from whole sentences (``retrieval.documents``), and with
generation off a free-text answer is an excerpt of the sentences closest to the question
(:meth:`retrieval.knowledge.KnowledgeBase.excerpt`): both split with :func:`split_sentences`.

A sentence ends at ``.``, ``!`` or ``?`` (closing quotes or brackets may follow) before a space
or line break, unless the next word starts with a lower-case letter ("9 a.m. to 5 p.m.") or the
word is a common abbreviation ("e.g.", "i.e.", "Mr."). A blank line (a paragraph) and a list
item always start a new sentence. Decimals ("2.5"), amounts ("£85,000") and addresses
("@acmebank.example") have no space after their dots, so they never split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

EXCERPT_WORDS = 60  # an excerpt answer's length: the best sentence, then others while they fit
EXCERPT_MARGIN = 0.1  # cosine below the best sentence's within which another sentence is kept

_ABBREVIATIONS = frozenset({"e.g", "i.e", "mr", "mrs", "ms", "dr", "prof", "st", "vs", "approx",
                            "incl", "cf"})
_END = re.compile(r"(.*?)([.!?]+)[\"'”’)\]*_]*")
_ITEM = re.compile(r"\s*(?:[-*+•]|\d{1,3}[.)])\s+")
PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")  # a blank line; split() keeps it
_OPENERS = "\"'“‘(*_"


@dataclass(frozen=True)
class Sentence:
    """One sentence, and what separates it from the one before in its text: a space, a line
    break before a list item or a blank line before a paragraph."""

    text: str
    gap: str = " "

    @property
    def words(self) -> int:
        return len(self.text.split())


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` in order; spacing inside a sentence becomes single spaces."""
    sentences: list[Sentence] = []
    for n, paragraph in enumerate(PARAGRAPH_BREAK.split(text.strip())[::2]):
        for m, item in enumerate(_items(paragraph)):
            gap = "\n\n" if n and not m else "\n" if m else " "
            for k, sentence in enumerate(_split_block(item)):
                sentences.append(Sentence(sentence, gap if not k else " "))
    return sentences


def join_sentences(sentences: Sequence[Sentence]) -> str:
    """The sentences as text, each after its gap (the first one's gap left out)."""
    return "".join(s.gap + s.text for s in sentences)[len(sentences[0].gap):] if sentences else ""


def tail(sentences: Sequence[Sentence], words: int) -> list[Sentence]:
    """The last sentences that together have at most ``words`` words."""
    kept: list[Sentence] = []
    for sentence in reversed(sentences):
        words -= sentence.words
        if words < 0:
            break
        kept.insert(0, sentence)
    return kept


def select_sentences(sentences: Sequence[Sentence], scores: Sequence[float], *,
            words: int = EXCERPT_WORDS, margin: float = EXCERPT_MARGIN) -> list[Sentence]:
    """The best-scoring sentence plus, best first, the others scoring within ``margin`` of it
    while the whole stays within ``words`` words; in their original order."""
    if not sentences:
        return []
    ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
    best = ranked[0]
    chosen, total = {best}, sentences[best].words
    for i in ranked[1:]:
        if scores[i] < scores[best] - margin:
            break
        if total + sentences[i].words <= words:
            chosen.add(i)
            total += sentences[i].words
    return [sentences[i] for i in sorted(chosen)]


def _items(paragraph: str) -> list[str]:
    """A paragraph's list items (each with its marker), or the paragraph itself."""
    items: list[list[str]] = []
    for line in paragraph.splitlines():
        if not items or _ITEM.match(line):
            items.append([])
        items[-1].append(line)
    return ["\n".join(lines) for lines in items if "".join(lines).strip()]


def _split_block(block: str) -> list[str]:
    """The sentences of one paragraph or list item (a list marker stays on its first)."""
    marker = _ITEM.match(block)
    head = marker.group().strip() + " " if marker else ""
    words = block[marker.end() if marker else 0:].split()
    sentences: list[str] = []
    current: list[str] = []
    for word, following in zip(words, [*words[1:], ""], strict=True):
        current.append(word)
        if following and _ends_sentence(word, following):
            sentences.append(" ".join(current))
            current = []
    if current:
        sentences.append(" ".join(current))
    if head and sentences:
        sentences[0] = head + sentences[0]
    return sentences


def _ends_sentence(word: str, following: str) -> bool:
    end = _END.fullmatch(word)
    if end is None:
        return False
    if end.group(2) == "." and end.group(1).lstrip(_OPENERS).lower() in _ABBREVIATIONS:
        return False
    return not following.lstrip(_OPENERS)[:1].islower()
