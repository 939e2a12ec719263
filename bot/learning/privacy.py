"""Private by construction: what in a suggestion belongs to one customer's case.

Two kinds of text never reach the bot's files unnoticed:

- **Private**: a placeholder that redaction left (``[PHONE]``, ``[EMAIL]``... as
  :func:`bot.sessions.redaction.redact` writes them, or any other ``[UPPER_CASE]`` mark), personal
  data redaction would mask (:func:`bot.sessions.redaction.find_pii`), and people's names.
- **Case-specific** (mining only): a particular person ("he", "her"), and amounts, dates,
  reference numbers and proper nouns that fewer than two conversations' agent replies state
  without their customer having said them first; the team's policy is what several agents
  say unprompted.

People's names are found with :class:`Names`: the names the imported conversations give in the
places people give them (salutations, "Tom here", sign-offs, "Mr Hughes", "my father, Geoffrey
Palmer"), then full names around a known one, leaving out the bot's own FAQ vocabulary and words
the conversations mostly write in lower case. A name is then found wherever it is capitalised.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from bot.learning.exchanges import SMALL_TALK
from bot.learning.transcripts import Conversation
from bot.sessions.redaction import find_pii
from retrieval.passages import Passage

PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")  # what redaction leaves: [EMAIL], [PHONE], ...
LEARNED_SOURCE = "learned.yaml"  # accepted suggestions: not the bot's own vocabulary
MIN_SUPPORT = 2  # conversations whose replies state a fact before it is the team's policy
MIN_KEPT = 0.5  # share of a reply's words an answer keeps, else the next reply is tried
NEAR = 0.05  # a clean reply this close to the most typical one is preferred

_NAME = r"[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:[-'][A-Z][a-z]+)?"  # Jane, McCarthy, Smith-Jones
_FULL = rf"{_NAME}(?:[ \t]+{_NAME}){{0,2}}"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?"
_RELATIVE = ("father|mother|dad|mum|mom|husband|wife|partner|son|daughter|brother|sister|"
             "aunt|uncle|nan|gran|grandma|grandad|grandmother|grandfather|friend|colleague|"
             "client|tenant|landlord|carer|neighbour")
_CLOSING = (r"(?:kind |best |warm |many )?(?:regards|wishes|thanks|thank you|cheers|sincerely|"
            r"yours(?: sincerely| faithfully| truly)?|best|love|ta)")
NAME_PLACES = tuple(re.compile(p, re.MULTILINE) for p in (
    rf"^[ \t]*(?i:dear|hi|hello|hey|hiya|morning|good (?:morning|afternoon|evening))[ \t]+"
    rf"(?:{_TITLE}[ \t]+)?(?P<name>{_FULL})\b",  # "Dear Karen," "Hi Mr Hughes"
    rf"(?i:\b(?:hi|hello|hey)[,!]?[ \t]+)(?P<name>{_NAME})[ \t]+here\b",  # "Hi, Tom here."
    rf"(?i:\b(?:my name is|my name's|this is)[ \t]+)(?P<name>{_FULL})",
    rf"\b{_TITLE}[ \t]+(?P<name>{_FULL})",  # "Mrs Jones"
    rf"(?i:\bmy (?:late )?(?:{_RELATIVE})(?:-in-law)?),?[ \t]+(?P<name>{_FULL})",
    rf"^[ \t]*(?i:{_CLOSING})[ \t]*[,.!-]?[ \t]*(?:\n[ \t]*)?(?P<name>{_FULL})[ \t]*$",
))
_PAIR = re.compile(rf"\b(?P<first>{_NAME})[ \t]+(?P<last>{_NAME})\b")
_TITLED = re.compile(rf"\b{_TITLE}[ \t]+{_NAME}\b")
_WORD = re.compile(rf"\b{_NAME}\b")
NOT_NAMES = ENGLISH_STOP_WORDS | SMALL_TALK | {
    "sir", "madam", "team", "support", "customer", "customers", "everyone", "here", "bank",
    "services", "service", "department", "mx", "mr", "mrs", "ms", "miss", "dr"}

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b")
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b"
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
AMOUNT, PERSON, PROPER = "an amount", "a particular person", "a proper noun"
FACTS = (  # what one customer's case has: (kind, pattern), the first to match a place wins
    (AMOUNT, re.compile(rf"[£$€]\s?{_NUMBER}(?:\s?(?:k|m|bn|million)\b)?|\b{_NUMBER}\s?"
                             r"(?:k\b|(?:pounds|quid|euros?|dollars?|GBP|EUR|USD)\b|%)")),
    ("a reference", re.compile(r"#\s?[A-Za-z0-9-]*\d[A-Za-z0-9-]*|\b\d+(?:-\d+){2,}\b"
                               r"|\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Z])[A-Z0-9]"
                               r"[A-Za-z0-9-]{4,}\b|\b\d{5,}\b")),
    ("a date", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH}|\b{_MONTH}"
                          r"(?:\s+\d{1,2}(?:st|nd|rd|th)?\b)?|\b\d{1,2}(?:st|nd|rd|th)\b"
                          rf"|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|\b{_DAY}|\b(?:19|20)\d\d\b"
                          r"|\b(?:yesterday|today|tomorrow|tonight)\b"
                          r"|\b(?:last|this|next) (?:week|month|year)\b")),
)
_PARTICULAR = re.compile(r"\b(?i:he|she|him|his|her|hers|himself|herself)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9£$€])")


@dataclass(frozen=True)
class Found:
    """Something private in a text: a placeholder, personal data or a person's name."""

    kind: str  # "placeholder", "personal data" or "name"
    value: str
    start: int

    @property
    def category(self) -> str:
        return {"placeholder": "masked personal data", "name": "a person's name"}.get(
            self.kind, "personal data")

    def describe(self) -> str:
        value = self.value if self.kind == "placeholder" else repr(self.value)
        return f"{value} ({self.category})"


def vocabulary(passages: Iterable[Passage], *extra: str) -> frozenset[str]:
    """The lower-case words of the bot's own FAQ (questions, answers, alternatives), without
    the entries accepted from suggestions, and of ``extra`` texts (the bot's name)."""
    texts = [t for p in passages if not p.source.replace("\\", "/").endswith(LEARNED_SOURCE)
             for t in (p.text, p.question or "", *p.alternatives)]
    return frozenset(w for t in [*texts, *extra] for w in re.findall(r"[a-z]+", t.lower()))


class Names:
    """People's names the conversations give, found again in any text."""

    def __init__(self, names: Iterable[str], vocabulary: frozenset[str] = frozenset()) -> None:
        self.vocabulary = vocabulary
        self.names = frozenset(n for n in names if n.lower() not in vocabulary)

    @classmethod
    def learn(cls, conversations: Iterable[Conversation],
              vocabulary: frozenset[str] = frozenset()) -> Names:
        """The names ``conversations`` give, except the FAQ's words and common words."""
        texts = [m.text for c in conversations for m in c.messages if m.speaker != "bot"]
        lower = Counter(w for t in texts for w in re.findall(r"\b[a-z][a-z'-]+\b", t))
        upper = Counter(w for t in texts for w in _WORD.findall(t))

        def usable(word: str) -> bool:
            key = word.lower()
            return key not in vocabulary and key not in NOT_NAMES and lower[key] < upper[word]

        names = {word for t in texts for place in NAME_PLACES for m in place.finditer(t)
                 for word in m.group("name").split() if usable(word)}
        for _ in range(2):  # full names around a known one: "Geoffrey Palmer"
            names |= {word for t in texts for m in _PAIR.finditer(t)
                      if m.group("first") in names or m.group("last") in names
                      for word in (m.group("first"), m.group("last")) if usable(word)}
        return cls(names, vocabulary)

    def find(self, text: str) -> list[Found]:
        """The names in ``text`` (adjacent capitalised words joined: "Geoffrey Palmer"), and
        any titled name ("Mrs Jones")."""
        spans = [m.span() for m in _TITLED.finditer(text)]
        words = list(_WORD.finditer(text))
        for n, word in enumerate(words):
            if word.group() in self.names and word.group().lower() not in self.vocabulary:
                start, end, left, right = word.start(), word.end(), n, n
                while left > 0 and self._joins(text, words[left - 1], start):
                    left -= 1
                    start = words[left].start()
                while right + 1 < len(words) and self._joins(text, words[right + 1], end):
                    right += 1
                    end = words[right].end()
                spans.append((start, end))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return [Found("name", text[s:e], s) for s, e in merged]

    def _joins(self, text: str, word: re.Match[str], edge: int) -> bool:
        """Whether ``word`` stands right beside ``edge`` (one space or tab) and is no FAQ
        word: part of the same full name."""
        gap = text[word.end():edge] if word.end() <= edge else text[edge:word.start()]
        return gap in (" ", "\t") and word.group().lower() not in self.vocabulary \
            and word.group().lower() not in NOT_NAMES


def private(text: str, names: Names, *, pii: bool = False) -> list[Found]:
    """Placeholders and people's names in ``text``, left to right; with ``pii``, personal
    data redaction would mask too (not at accept time: the bot's own phone number or address
    replacing a placeholder is what a reviewer is asked to write)."""
    found = [Found("placeholder", m.group(), m.start()) for m in PLACEHOLDER.finditer(text)]
    if pii:
        found += [Found("personal data", f.value, f.start) for f in find_pii(text)]
    found += names.find(text)
    return sorted(found, key=lambda f: f.start)


def anonymous(text: str, names: Names) -> str | None:
    """A customer's wording without the names it gives in apposition ("my father, Geoffrey
    Palmer, died" -> "my father died"); None when it still holds a name or a placeholder."""
    for found in reversed(names.find(text)):
        before, after = text[:found.start], text[found.start + len(found.value):]
        if before.endswith(", ") and after.startswith(","):
            text = before[:-2] + after[1:]
    return None if private(text, names) else text


def facts(text: str, names: Names | None = None,
          common: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The amounts, references, dates, particular people (he, she) and proper nouns (with
    ``names``: capitalised inside a sentence, neither a word of the bot's FAQ nor one of
    ``common``, the words written in lower case) ``text`` states: (kind, normalised value)."""
    taken: list[tuple[int, int]] = []
    found: list[tuple[str, str]] = []
    for kind, pattern in FACTS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if all(end <= s or start >= e for s, e in taken):
                taken.append((start, end))
                found.append((kind, _key(kind, match.group())))
    found += [(PERSON, m.group().lower()) for m in _PARTICULAR.finditer(text)]
    if names is not None:
        found += [(PROPER, m.group().lower()) for m in _WORD.finditer(text)
                  if m.group().lower() not in names.vocabulary | NOT_NAMES | common
                  and m.group() not in names.names and not _starts_sentence(text, m.start())
                  and all(m.end() <= s or m.start() >= e for s, e in taken)]
    return found


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start]
    return not before.strip() or before.endswith("\n") or before.rstrip()[-1] in ".!?:;\"'(>"


def asked(text: str) -> set[tuple[str, str]]:
    """The facts a customer's own messages state, their bare numbers read as amounts and
    every word as a proper noun too (customers write "barclays")."""
    return set(facts(text)) | {(AMOUNT, _key(AMOUNT, m.group()))
                               for m in re.finditer(rf"\b{_NUMBER}(?:\s?k\b)?", text)} \
        | {(PROPER, w) for w in re.findall(r"[a-z]+", text.lower())}


@dataclass(frozen=True)
class Answer:
    """A new entry's answer drawn from its agents' replies, or why there is none."""

    text: str | None  # None: withheld
    reply: int  # the reply it was drawn from (a position in the replies given)
    removed: tuple[str, ...] = ()  # what was left out of that reply, and why
    reason: str = ""  # why it was withheld


def general_answer(replies: Sequence[str], customers: Sequence[str], order: Sequence[int],
                   typical: Sequence[float], support: Sequence[int], names: Names) -> Answer:
    """The most typical reply (``order``, most typical first) that at least one other
    conversation's reply agrees with (``support``), without the sentences that hold
    something private, a particular person (he, she), or an amount, date, reference or
    proper noun that fewer than two conversations' replies state unprompted (the customer of
    the conversation, ``customers``, did not say it). A clean reply nearly as typical as the
    first is preferred; one that would lose more than half its words is passed over; when
    every reply would, the answer is withheld."""
    agreed = [n for n in order if support[n] >= 1]
    if not agreed:
        return Answer(None, order[0], reason="no two conversations' agent replies agree")
    common = frozenset(w for r in replies for w in re.findall(r"\b[a-z]+\b", r))
    stated = Counter(fact for reply, customer in zip(replies, customers, strict=True)
                     for fact in set(facts(reply, names, common)) - asked(customer))
    cleaned = {n: _general(replies[n], stated, names, common) for n in agreed}
    best = typical[agreed[0]]
    for n in agreed:
        if typical[n] >= best - NEAR and not cleaned[n][1]:
            return Answer(cleaned[n][0], n)
    for n in agreed:
        text, removed = cleaned[n]
        if len(text.split()) >= MIN_KEPT * len(replies[n].split()):
            return Answer(text, n, tuple(f"{s!r}: {', '.join(d for _, d in why)}"
                                         for s, why in removed))
    causes = sorted({category for n in agreed for _, why in cleaned[n][1]
                     for category, _ in why})
    return Answer(None, agreed[0], reason="every agent reply that others agree with is mostly "
                  f"about one customer's case ({', '.join(causes)})")


def _general(reply: str, stated: Counter[tuple[str, str]], names: Names,
             common: frozenset[str]) -> tuple[str, list[tuple[str, list[tuple[str, str]]]]]:
    """``reply`` without its sentences about one customer's case, and those sentences with
    what each held."""
    kept_paragraphs: list[str] = []
    removed: list[tuple[str, list[tuple[str, str]]]] = []
    for paragraph in reply.split("\n\n"):
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(paragraph):
            why = [(f.category, f.describe()) for f in private(sentence, names, pii=True)] + [
                (kind, f"{kind} ({value})" if kind == PERSON else
                 f"{kind} fewer than {MIN_SUPPORT} conversations' replies state ({value})")
                for kind, value in facts(sentence, names, common)
                if kind == PERSON or stated[kind, value] < MIN_SUPPORT]
            if why:
                removed.append((sentence, why))
            else:
                kept.append(sentence)
        if kept:
            kept_paragraphs.append(" ".join(kept))
    return "\n\n".join(kept_paragraphs), removed


def _key(kind: str, value: str) -> str:
    """A fact as compared with others: an amount as a number ("£3,000", "3k": "3000")."""
    if kind == AMOUNT and (number := re.search(rf"({_NUMBER})\s?(k|m|bn|million)?", value,
                                               re.IGNORECASE)):
        scale = {"k": 1e3, "m": 1e6, "million": 1e6, "bn": 1e9}.get(
            (number.group(2) or "").lower(), 1)
        percent = "%" if value.rstrip().endswith("%") else ""
        return f"{float(number.group(1).replace(',', '')) * scale:g}{percent}"
    return re.sub(r"[\s,]+|^the\s+", "", value.lower())
