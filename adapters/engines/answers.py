"""What a dialogue model is asked and answers, and the post-processing every model shares.

A :class:`GenerationRequest` goes in, a :class:`GeneratedAnswer` comes out, whether the
model runs here (adapters/engines/generation.py) or on a model server
(adapters/engines/remote_model.py). Both feed the raw text to an :class:`AnswerCollector`,
which passes it on with ``[id]`` markers filtered out, and build the answer with
:func:`finish_answer`: markers stripped, citations parsed and verified, declines
recognised. With no passages the answer is the rule answer (:func:`rule_answer`) and no
model runs.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters.engines.prompting import (
    NO_ANSWER,
    MarkerFilter,
    PromptTurn,
    is_decline,
    parse_citations,
    strip_markers,
    verify_citations,
)
from adapters.settings import Persona
from retrieval.documents import Passage

_WORD = re.compile(r"[\w']+")
REPEAT_MAX_WORDS = 8


@dataclass(frozen=True)
class GenerationRequest:
    """One question with the passages (already filtered for relevance) to answer from."""

    question: str
    passages: Sequence[Passage] = ()
    history: Sequence[PromptTurn] = ()
    persona: Persona = field(default_factory=Persona)
    adapter: str | None = None
    max_new_tokens: int | None = None
    no_answer: str = NO_ANSWER


@dataclass(frozen=True)
class GeneratedAnswer:
    """The answer text (markers removed), the passage ids it cites and how it came about."""

    text: str
    cited_ids: tuple[str, ...] = ()
    declined: bool = False
    tokens: int = 0
    seconds: float = 0.0
    adapter: str | None = None
    first_token_seconds: float | None = None
    marked_ids: tuple[str, ...] = ()  # the model's own markers (in the prompt), before checks
    batch_size: int = 0  # how many requests ran in the model call with this one (0: none)
    degenerate: bool = False  # the text loops (is_degenerate): not fit to be shown


class AnswerCollector:
    """One request's raw text, with ``[id]`` markers filtered out of what it streams."""

    def __init__(self, on_delta: Callable[[str], None]) -> None:
        self.on_delta = on_delta
        self.raw: list[str] = []
        self.cleaner = MarkerFilter()

    def take(self, delta: str) -> None:
        self.raw.append(delta)
        shown = self.cleaner.feed(delta)
        if shown:
            self.on_delta(shown)

    def looping(self) -> bool:
        """Whether the text so far loops (generation can stop: it will not be shown)."""
        return is_degenerate("".join(self.raw))

    def finish(self) -> str:
        """Flush the held-back text; returns the full raw text."""
        tail = self.cleaner.finish()
        if tail:
            self.on_delta(tail)
        return "".join(self.raw)


def finish_answer(request: GenerationRequest, full: str, *, tokens: int, started: float,
                  batch_size: int = 0, first_token_at: float | None = None) -> GeneratedAnswer:
    """The answer from the raw generated text ``full`` (markers included).

    ``started`` and ``first_token_at`` are :func:`time.perf_counter` readings.
    """
    text = strip_markers(full)
    marked = parse_citations(full, (p.id for p in request.passages))
    cited = verify_citations(text, marked, request.passages)
    first = (first_token_at - started) if first_token_at else None
    return GeneratedAnswer(text, cited, not cited and is_decline(text), tokens,
                           time.perf_counter() - started, request.adapter, first,
                           marked, batch_size, is_degenerate(text))


def is_degenerate(text: str) -> bool:
    """Whether generated text loops: a phrase of 1-8 words said three times in a row
    ("I'm sorry, I'm sorry, I'm sorry"), or a phrase of 3+ words three times anywhere."""
    words = _WORD.findall(text.lower())
    for size in range(1, REPEAT_MAX_WORDS + 1):
        grams = [tuple(words[i:i + size]) for i in range(len(words) - size + 1)]
        for i in range(len(grams) - 2 * size):
            if grams[i] == grams[i + size] == grams[i + 2 * size]:
                return True
        if size >= 3 and grams and max(Counter(grams).values()) >= 3:
            return True
    return False


def rule_answer(request: GenerationRequest) -> GeneratedAnswer:
    """The answer to a request without passages: say so and offer a human (no model call)."""
    return GeneratedAnswer(request.no_answer, (), True, 0, 0.0, request.adapter)
