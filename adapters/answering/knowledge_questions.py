"""Training questions for the answer policy made from the knowledge itself (draft)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from adapters.answering.answer_policy import Example
from adapters.answering.evidence import EvidenceBuilder, word_counts
from adapters.classifiers.intents import background_examples
from retrieval.documents import Passage
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex, Hit


@dataclass(frozen=True)
class Options:
    rows: str = "answer"  # the asked entry's rows: "answer" (answer alone), "qa" (q+answer)
    dropout: float = 0.0
    shuffle: bool = False
    copies: int = 1
    uncovered: bool = True
    uncovered_weight: float = 0.5
    background: bool = True
    background_share: float = 0.2
    plain_only: bool = True
    sentences: int = 0  # answer sentences asked as questions


def _perturbed(text: str, rng: np.random.Generator, options: Options) -> str:
    words = text.split()
    if options.dropout and len(words) > 2:
        kept = [w for w in words if rng.random() >= options.dropout]
        words = kept if len(kept) >= 2 else words[:2]
    if options.shuffle:
        words = [words[i] for i in rng.permutation(len(words))]
    return " ".join(words)


class RowSearch:
    """Cosine search over the index's rows, best row per entry, with an entry's rows
    replaced by others (``instead``) or left out."""

    def __init__(self, index: FaqIndex, vectors: np.ndarray | None = None) -> None:
        self.index = index
        self.vectors = index.index.reconstruct_n(0, index.index.ntotal) if vectors is None \
            else vectors
        self.owners = np.asarray(index.owners)
        self.texts = [t for p in index.passages for t in p.search_texts()]

    def search(self, query: np.ndarray, k: int, *, entry: int = -1,
               instead: np.ndarray | None = None) -> list[Hit]:
        scores = self.vectors @ query
        best = np.full(len(self.index.passages), -np.inf)
        np.maximum.at(best, self.owners, scores)
        if entry >= 0:
            best[entry] = -np.inf if instead is None or not len(instead) \
                else float(np.max(instead @ query))
        order = [int(i) for i in np.argsort(-best)[:k] if np.isfinite(best[i])]
        return [Hit(self.index.passages[i], float(best[i])) for i in order]


def knowledge_examples(index: FaqIndex, embedder: Embedder, evidence: EvidenceBuilder,
                       answerable: set[str], by_passage: Mapping[str, set[str]], k: int,
                       options: Options, *, background: bool, seed: int = 0,
                       ) -> list[Example]:
    rng = np.random.default_rng(seed)
    search = RowSearch(index)
    asked = [n for n, p in enumerate(index.passages) if p.question
             and (not options.plain_only or not p.alternatives)]
    examples: list[Example] = []
    if asked:
        rows_of = {n: _rows(index.passages[n], options) for n in asked}
        flat = [t for n in asked for t in rows_of[n]]
        vectors = embedder.embed(flat) if flat else np.zeros((0, 1))
        spans: dict[int, np.ndarray] = {}
        at = 0
        for n in asked:
            spans[n] = vectors[at:at + len(rows_of[n])]
            at += len(rows_of[n])
        queries: list[tuple[int, str]] = []
        for n in asked:
            passage = index.passages[n]
            texts = [passage.question or ""]
            if options.dropout or options.shuffle:
                texts = [_perturbed(texts[0], rng, options) for _ in range(options.copies)]
            queries += [(n, t) for t in texts]
        qvecs = embedder.embed([t for _, t in queries])
        for (n, text), vector in zip(queries, qvecs, strict=True):
            passage = index.passages[n]
            own = _without_question(evidence, passage)
            stripped = replace(passage, question=None, title="")
            hits = search.search(vector, k, entry=n, instead=spans[n])
            hits = [Hit(stripped, h.score) if h.passage.id == passage.id else h for h in hits]
            right = frozenset({f"faq:{passage.id}", *by_passage.get(passage.id, ())})
            examples.append(Example(tuple(own.candidates(text, hits, None, answerable)), right))
            if options.uncovered:
                hits = search.search(vector, k, entry=n)
                examples.append(Example(tuple(own.candidates(text, hits, None, answerable)),
                                        frozenset(), options.uncovered_weight))
    if background and options.background:
        texts = background_examples()
        weight = options.background_share * max(1, len(examples)) / max(1, len(texts))
        for text, vector in zip(texts, embedder.embed(texts), strict=True):
            hits = search.search(vector, k)
            examples.append(Example(tuple(evidence.candidates(text, hits, None, answerable)),
                                    frozenset(), weight))
    return examples


def _rows(passage: Passage, options: Options) -> list[str]:
    """The rows the asked entry is found by while its question is asked."""
    rows = list(passage.alternatives)
    rows.append(passage.text if options.rows == "answer" else f"{passage.question} {passage.text}")
    return rows


def _without_question(evidence: EvidenceBuilder, passage: Passage) -> EvidenceBuilder:
    """The bot's evidence as if the entry's question were not written."""
    known: Counter[str] = Counter(evidence.known)
    known.subtract(word_counts([passage.title, passage.question or ""]))
    return EvidenceBuilder(+known, evidence.intent_words, evidence.links)


def knowledge_counts(examples: Sequence[Example]) -> dict[str, int]:
    return {"covered": sum(1 for e in examples if e.right),
            "uncovered": sum(1 for e in examples if not e.right)}
