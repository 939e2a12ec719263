"""Whether a generated answer says only what its passages say, before anybody sees it.

A small dialogue model invents: a limit from another entry, a country nobody mentioned,
the entry's title echoed as if it were the answer, or the question handed back as a
statement. :func:`check_generated` finds these in a generated text, given the passages the
model was shown (those it cites, when it cites any) and the customer's question:

- ``number``: every number in the answer (amounts, percentages, durations, limits; digits or
  number words) appears in a passage or in the question;
- ``name``: every capitalised word inside a sentence (a product, place, menu item, person)
  appears in a passage, in the question or among the bot's own names;
- ``echo``: no prompt structure ("?:", role labels such as ``User:``) and no opening that is
  a passage's question or title;
- ``restates``: the answer adds something to the question (not "Yes, there is a fee to send
  money to Spain?" for "is there a fee to send money to Spain?");
- ``repeats``: no sentence said twice.

An answer with a problem is not shown; the caller answers with the passage's own text and
records the problems.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from retrieval.documents import Passage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*|[-*•]\s+|\"|\()\s*$")
_ROLE_LABEL = re.compile(r"\b(?:user|assistant|customer|system|passage|question|answer|"
                         r"context|agent)\s*:", re.IGNORECASE)
# "one" is left out: it is a pronoun as often as a number ("a new one")
_NUMBER_WORDS = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "hundred": "100", "thousand": "1000", "million": "1000000"}
_FILLER = frozenset({
    "a", "an", "the", "yes", "no", "yeah", "sure", "of", "course", "i", "you", "we", "it",
    "is", "are", "be", "can", "do", "does", "there", "to", "for", "and", "or", "in", "on",
    "at", "with", "your", "our", "my", "this", "that", "as", "so"})


@dataclass(frozen=True)
class GroundingCheck:
    """What is wrong with a generated answer (nothing: it may be shown)."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _numbers(text: str) -> set[str]:
    found = {m.group().replace(",", "").rstrip(".") for m in _NUMBER.finditer(text)}
    words = {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return found | words


def _names(text: str) -> set[str]:
    """Capitalised words that do not open a sentence (or a list item, quote or bracket)."""
    names = set()
    for match in _WORD.finditer(text):
        word = match.group()
        if word[0].isupper() and word != "I" and \
                not _SENTENCE_START.search(text[:match.start()]):
            names.add(_token(word))
    return names


def _token(word: str) -> str:
    """A word compared: lower case, without a possessive ``'s``."""
    return re.sub(r"'s?$", "", word.lower())


def _words(text: str) -> set[str]:
    return {_token(w) for w in _WORD.findall(text)}


def _content(text: str) -> set[str]:
    return {w for w in _words(text) if w not in _FILLER and len(w) > 1}


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def check_generated(text: str, *, question: str, passages: Sequence[Passage],
                    known_names: Iterable[str] = ()) -> GroundingCheck:
    """The problems of generated ``text`` answering ``question`` from ``passages``."""
    sources = [p.text for p in passages] + [p.question or "" for p in passages] + \
        [p.title or "" for p in passages]
    support = " ".join([question, *sources])
    problems: list[str] = []
    numbers = sorted(_numbers(text) - _numbers(support))
    problems += [f"number:{n}" for n in numbers]
    allowed = _words(support) | {_token(w) for name in known_names for w in _WORD.findall(name)}
    problems += [f"name:{n}" for n in sorted(_names(text) - allowed)]
    opening = _normal(text)
    if "?:" in text or _ROLE_LABEL.search(text) or any(
            len(_normal(head)) >= 12 and opening.startswith(_normal(head))
            for p in passages for head in (p.question or "", p.title or "")):
        problems.append("echo")
    if not _content(text) - _content(question):
        problems.append("restates")
    sentences = [_normal(s) for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    if len(sentences) != len(set(sentences)):
        problems.append("repeats")
    return GroundingCheck(tuple(problems))
