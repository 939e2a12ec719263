"""Multi-part questions: "How long does a transfer abroad take and what does it cost?".

:func:`question_parts` splits a message into the questions it asks: at question marks and
sentence ends, then at "and"/"also"/"plus" when what follows opens a new question ("and
what ...", "and can I ...", "also my ..."). Parts of fewer than three words stay with the
part before them. The FAQ stage answers each part on its own when they ask different
things (``stages/faq.py``).
"""

from __future__ import annotations

import re

from bot.dialogue.follow_up import is_question

_WORD = re.compile(r"\w+(?:'\w+)?")
_SENTENCES = re.compile(r"(?<=[?.!;])\s+")
_JOINS = re.compile(r"\s*,?\s+\b(?:and also|and|also|plus|as well as)\b\s+", re.IGNORECASE)
_OPENERS = frozenset({"how", "what", "when", "where", "why", "who", "which", "can", "could",
                      "do", "does", "is", "are", "will", "would", "should", "i", "my",
                      "whats", "what's", "hows", "how's", "tell", "change", "update", "get"})
MIN_WORDS = 3


def question_parts(text: str) -> list[str]:
    """The questions ``text`` asks, in order (one part: it asks one thing)."""
    parts: list[str] = []
    for sentence in _SENTENCES.split(text.strip()):
        pieces = _JOINS.split(sentence)
        current = pieces[0]
        for piece in pieces[1:]:
            first = piece.split(maxsplit=1)[0].lower() if piece.split() else ""
            if first in _OPENERS and len(piece.split()) >= MIN_WORDS and \
                    len(current.split()) >= MIN_WORDS:
                parts.append(current)
                current = piece
            else:
                current = f"{current} and {piece}"
        parts.append(current)
    merged: list[str] = []
    for part in (p.strip() for p in parts if p.strip()):
        if merged and (len(part.split()) < MIN_WORDS or not _asks(part)):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def _asks(part: str) -> bool:
    words = part.lower().split()
    return is_question(part) or (bool(words) and words[0] in _OPENERS)


SHORT_PART = 5  # words: a later part this short may lean on the one before it


def leans_on_previous(part: str) -> bool:
    """A later part that is a question too short to name a topic of its own ("Is there a
    fee?", "What should I do?"): it may ask about the part before it. (A part that says what
    to do, "... and also update my phone number", does not.)"""
    return part.rstrip().endswith("?") and len(_WORD.findall(part)) <= SHORT_PART
