"""Prompts for grounded answers and the citation markers the model writes back.

The same functions render training examples and run-time prompts, so the model sees one
format: a system message with persona and rules, the passages each headed by ``[id]``, the
recent history, then the question. Answers end with ``[passage-id]`` markers; they are
parsed into citations (only ids that were in the prompt count) and stripped from the text,
also while streaming (:class:`MarkerFilter` gives the same text for any chunking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.settings import Persona
from retrieval.documents import Passage

NO_ANSWER = ("I'm sorry, I don't have information about that. "
             "Would you like me to connect you with a human agent?")
PROMPT_VERSION = 1
MAX_MARKER = 80
_ID_CHARS = re.compile(r"[A-Za-z0-9_.:/#-]")
_MARKER = re.compile(r"\[([A-Za-z0-9_.:/#-]+(?:\s*,\s*[A-Za-z0-9_.:/#-]+)*)\]")
_DECLINE = re.compile(r"\b(don't|do not|cannot|can't) (know|have (any |that |this )?information"
                      r"|find)|\bhuman agent\b", re.IGNORECASE)


@dataclass(frozen=True)
class PromptTurn:
    """One earlier message of the conversation, as the prompt's history shows it."""

    role: str  # "user" or "assistant"
    text: str


def system_prompt(persona: Persona) -> str:
    """Persona, style and the grounding rules."""
    return (
        f"You are {persona.name}, {persona.description}. {persona.style}\n"
        "Answer the customer's question using only the passages below. "
        "After the answer, write the id of the passage you used in square brackets, "
        "like [passage-id]. If no passage answers the question, say you don't have that "
        "information and offer to connect the customer with a human agent."
    )


def passage_text(passage: Passage, max_words: int) -> str:
    """A passage as shown to the model: ``[id] title: text`` cut to ``max_words`` words."""
    words = passage.text.split()
    body = " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")
    title = passage.question or passage.title
    return f"[{passage.id}] {title}: {body}" if title else f"[{passage.id}] {body}"


def user_prompt(question: str, passages: Sequence[Passage], *, max_words: int) -> str:
    listing = "\n".join(passage_text(p, max_words) for p in passages)
    return f"Passages:\n{listing}\n\nQuestion: {question.strip()}"


def build_messages(persona: Persona, question: str, passages: Sequence[Passage], *,
                   history: Sequence[PromptTurn] = (), history_turns: int = 2,
                   max_words: int = 80) -> list[dict[str, str]]:
    """Chat messages for the tokenizer's chat template (without the answer); the history
    is cut to its last ``history_turns`` exchanges (user message and reply)."""
    messages = [{"role": "system", "content": system_prompt(persona)}]
    recent = list(history)[-2 * history_turns:] if history_turns > 0 else []
    for turn in recent:
        role = "assistant" if turn.role in ("assistant", "bot") else "user"
        messages.append({"role": role, "content": turn.text})
    messages.append({"role": "user",
                     "content": user_prompt(question, passages, max_words=max_words)})
    return messages


def answer_target(passage: Passage) -> str:
    """What the model learns to write for a question ``passage`` answers."""
    return f"{passage.text.strip()} [{passage.id}]"


def parse_citations(text: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """Ids in ``[id]`` markers of ``text`` that are in ``allowed``, first occurrence first."""
    permitted = set(allowed)
    found: list[str] = []
    for match in _MARKER.finditer(text):
        for part in match.group(1).split(","):
            cited = part.strip()
            if cited in permitted and cited not in found:
                found.append(cited)
    return tuple(found)


_WORD = re.compile(r"[a-z0-9£$€%]+(?:[.,'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-cased word tokens for overlap measures."""
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)), one row of memory)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def coverage(answer: str, passage: Passage) -> float:
    """Share of the answer's words that follow the passage in order (LCS / answer length)."""
    said = words(answer)
    return lcs_length(said, words(passage.text)) / len(said) if said else 0.0


def verify_citations(text: str, marked: Sequence[str], passages: Sequence[Passage], *,
                     strong: float = 0.6, weak: float = 0.3) -> tuple[str, ...]:
    """Correct citations when the answer clearly comes from another prompt passage.

    Marked ids are kept unless none of them covers the answer (< ``weak``) while another
    passage covers it well (>= ``strong``); then that passage is cited instead. An answer
    with no marker that clearly copies a passage cites it.
    """
    scores = {p.id: coverage(text, p) for p in passages}
    if not scores:
        return tuple(marked)
    best = max(scores, key=lambda i: scores[i])
    if scores[best] < strong or best in marked:
        return tuple(marked)
    if marked and any(scores.get(i, 0.0) >= weak for i in marked):
        return tuple(marked)
    return (best,)


def is_decline(text: str) -> bool:
    """Whether an answer says it does not know (so the caller can offer a handoff)."""
    return bool(_DECLINE.search(text))


class MarkerFilter:
    """Remove ``[id]`` markers from text fed in arbitrary pieces.

    Text inside an open ``[`` is held back until it is known to be a marker (dropped with the
    spaces before it) or plain text (emitted). Leading and trailing whitespace is dropped, so
    ``"".join(feed(...)...) + finish()`` equals :func:`strip_markers` of the whole text.
    """

    def __init__(self) -> None:
        self._started = False
        self._spaces = ""
        self._bracket: str | None = None

    def feed(self, text: str) -> str:
        out: list[str] = []
        for char in text:
            out.append(self._char(char))
        return "".join(out)

    def finish(self) -> str:
        """Flush what is held back at the end (an unclosed bracket is plain text)."""
        pending, self._bracket = self._bracket, None
        return self._emit(pending) if pending else ""

    def _emit(self, text: str) -> str:
        out = ""
        for char in text:
            if char.isspace():
                if self._started:
                    self._spaces += char
                continue
            out += self._spaces + char
            self._spaces = ""
            self._started = True
        return out

    def _char(self, char: str) -> str:
        if self._bracket is None:
            if char == "[":
                self._bracket = char
                return ""
            return self._emit(char)
        self._bracket += char
        inner = self._bracket[1:]
        if char == "]" and _MARKER.fullmatch(self._bracket):
            self._bracket = None
            self._spaces = ""
            return ""
        if (char == "[" or len(self._bracket) > MAX_MARKER
                or not (_ID_CHARS.match(char) or (char in ", " and inner.strip(", ")))):
            pending, self._bracket = self._bracket, None
            if char == "[":
                return self._emit(pending[:-1]) + self._char("[")
            return self._emit(pending)
        return ""


def strip_markers(text: str) -> str:
    """``text`` without ``[id]`` markers and surrounding whitespace."""
    cleaner = MarkerFilter()
    return cleaner.feed(text) + cleaner.finish()
