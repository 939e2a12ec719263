"""Follow-up questions: "and how long does that take?" only makes sense after the last one.

:func:`contextual_query` returns the text to search the FAQ with: the message itself, or the
previous user question plus the message when the message is a short or anaphoric follow-up,
its own retrieval is weak, and the combination retrieves better. The router calls it before
the FAQ stage and hands the rewritten query to the answerer (which then answers that question).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.sessions.store import Session

Retrieve = Callable[[str], Awaitable[Sequence[Any]]]  # hits with a ``score``, best first

_ANAPHORA = frozenset({"it", "that", "this", "those", "these", "they", "them", "then",
                       "its", "their", "one", "ones", "same", "he", "she", "him", "her"})
_OPENERS = ("and ", "what about", "how about", "also ", "but ", "so ", "what if", "and?")
_WORD = re.compile(r"[a-z']+")


_QUESTION_WORDS = frozenset({"how", "what", "when", "where", "why", "who", "which", "can",
                             "could", "do", "does", "did", "is", "are", "will", "would",
                             "should", "may", "whats", "what's", "hows", "how's"})


def is_question(text: str) -> bool:
    """Ends with "?" or opens with a question word ("how long ...", "can I ...")."""
    words = _WORD.findall(text.lower())
    return text.rstrip().endswith("?") or (bool(words) and words[0] in _QUESTION_WORDS)


def is_follow_up(text: str, *, max_words: int = 8) -> bool:
    """Short and either opening like a follow-up ("and ...", "what about ...") or pointing
    back ("it", "that", ...)."""
    lowered = text.lower().strip()
    words = _WORD.findall(lowered)
    if not words or len(words) > max_words:
        return False
    return lowered.startswith(_OPENERS) or bool(_ANAPHORA.intersection(words))


def previous_question(session: Session) -> str | None:
    """The last user message the bot answered from the FAQ (else the last user message)."""
    history = session.history
    last_user: str | None = None
    for i in range(len(history) - 1, -1, -1):
        turn = history[i]
        if turn.get("role") != "user":
            continue
        last_user = last_user or turn.get("text")
        answer = history[i + 1] if i + 1 < len(history) else {}
        if answer.get("kind") == "faq":
            return str(turn.get("text"))
    return last_user


# words that ask rather than name a topic: "how long does an international transfer take?"
# is about "international transfer"; a follow-up asks its own question about that topic
_ASKING = frozenset({
    "a", "an", "the", "to", "for", "of", "in", "on", "at", "by", "with", "from", "and", "or",
    "i", "me", "my", "we", "our", "you", "your", "it", "its", "that", "this", "there", "is",
    "are", "was", "were", "be", "been", "am", "do", "does", "did", "can", "could", "will",
    "would", "should", "may", "might", "must", "have", "has", "had", "how", "what", "when",
    "where", "why", "who", "which", "whats", "what's", "hows", "how's", "long", "much", "many",
    "take", "takes", "took", "time", "cost", "costs", "fee", "fees", "charge", "charges",
    "price", "get", "got", "need", "want", "like", "make", "made", "still", "yet", "not",
    "any", "some", "just", "please", "hi", "hello", "thanks", "ok", "okay", "so", "then",
    "hasn't", "haven't", "isn't", "doesn't", "don't", "didn't", "can't", "won't", "i'm",
    "i've", "it's", "yes", "no"})


def topic_of(question: str) -> str:
    """The words of ``question`` that name its topic, without those that ask."""
    return " ".join(w for w in _WORD.findall(question.lower()) if w not in _ASKING)


def _best(hits: Sequence[Any]) -> float:
    return float(hits[0].score) if hits else float("-inf")


async def contextual_query(session: Session, text: str, *, retrieve: Retrieve,
                           threshold: float, max_words: int = 8) -> str:
    """``text``, or ``"<previous question> <text>"`` when that retrieves better."""
    previous = previous_question(session)
    if not previous or previous == text or not is_follow_up(text, max_words=max_words):
        return text
    own = _best(await retrieve(text))
    if own >= threshold:
        return text
    combined = f"{previous} {text}"
    return combined if _best(await retrieve(combined)) > own else text
