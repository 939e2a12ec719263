"""Suggested wordings that would take questions away from the entries that answer them.

A customer's wording of a new topic can sit closer to a question the bot already answers
with another entry than to the rest of its own topic: "Can I pay a cheque in at the post
office like cash?" (a cheque question) next to "can I pay in cash at a post office?"
(cash-deposit-fee's). As a wording of the new entry it would turn that question's answer to
the new entry. :class:`WordingGuard` holds such a wording back: one that is nearer to a
question of another entry (an entry's own wording, compared without its own row, or a
conversation test's question that cites the entry; one the entry answers, from the bot's
``faq.answer_threshold``) than that entry's rows are, and nearer to it than to the rest of
its own group. The suggestion file lists what was held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adapters.answering.masked_search import MaskedSearch
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex


@dataclass(frozen=True)
class Anchor:
    """A question the bot answers with ``entry``, and that entry's best score for it."""

    text: str
    entry: str
    own: float


class WordingGuard:
    """Which of a new entry's wordings would take another entry's questions."""

    def __init__(self, anchors: Sequence[Anchor], vectors: np.ndarray,
                 embedder: Embedder) -> None:
        self.anchors = list(anchors)
        self.vectors = vectors
        self.embedder = embedder

    @classmethod
    def build(cls, index: FaqIndex, embedder: Embedder, cited: Sequence[tuple[str, str]] = (),
              *, threshold: float = 0.0) -> WordingGuard:
        """Anchors from every entry's own wordings (its index rows) and from ``cited``:
        (question, entry id) pairs, such as conversation tests' questions and what they cite;
        only those their entry answers from ``threshold`` (a question the bot would not
        answer with its entry anyway is not taken from it)."""
        if not index.passages:
            return cls([], np.zeros((0, 0), dtype=np.float32), embedder)
        search = MaskedSearch(index)
        rows = search.vectors
        anchors: list[Anchor] = []
        vectors: list[np.ndarray] = []
        for owner, passage in enumerate(index.passages):
            mine = np.flatnonzero(search.rows_of(owner))  # its questions' rows come first
            questions = passage.question_texts()
            if len(mine) < 2:
                continue
            for text, row in zip(questions, mine[:len(questions)], strict=True):
                own = float((rows[mine[mine != row]] @ rows[row]).max())
                if own >= threshold:
                    anchors.append(Anchor(text, passage.id, own))
                    vectors.append(rows[row])
        known = {p.id: n for n, p in enumerate(index.passages)}
        asked = [(q, e) for q, e in cited if e in known]
        if asked:
            for (question, entry), vector in zip(asked, embedder.embed([q for q, _ in asked]),
                                                 strict=True):
                best = float((rows[search.rows_of(known[entry])] @ vector).max())
                if best >= threshold:
                    anchors.append(Anchor(question, entry, best))
                    vectors.append(vector)
        stacked = np.stack(vectors) if vectors else np.zeros((0, rows.shape[1]), np.float32)
        return cls(anchors, stacked, embedder)

    def split(self, wordings: list[str]) -> tuple[list[str], list[str]]:
        """``wordings`` to keep, and those held back, each with why."""
        if len(wordings) < 2 or not self.anchors:
            return wordings, []
        vectors = self.embedder.embed(wordings)
        near = self.vectors @ vectors.T  # anchors x wordings
        kept: list[str] = []
        held: list[str] = []
        for n, wording in enumerate(wordings):
            rest = np.delete(vectors, n, axis=0).mean(axis=0)
            group = float(vectors[n] @ rest / np.linalg.norm(rest))
            taken = [k for k in np.argsort(-near[:, n])
                     if near[k, n] > max(self.anchors[k].own, group)]
            if not taken:
                kept.append(wording)
                continue
            anchor = self.anchors[taken[0]]
            held.append(f'"{wording}": nearer to "{anchor.text}", which {anchor.entry} '
                        "answers, than to the other questions of this topic")
        return kept, held
