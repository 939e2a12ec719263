"""Exact cosine search over an FAQ index's rows with some rows left out: how the answer
policy's training questions are asked of the bot's own knowledge."""

from __future__ import annotations

import numpy as np

from retrieval.index import FaqIndex, Hit


class MaskedSearch:
    """Exact cosine search over the index's vectors (or the same texts embedded by another
    encoder: ``vectors``) with some rows left out."""

    def __init__(self, index: FaqIndex, vectors: np.ndarray | None = None) -> None:
        self.index = index
        self.vectors = index.index.reconstruct_n(0, index.index.ntotal) if vectors is None \
            else vectors
        self.owners = np.asarray(index.owners)
        self.texts = [t for p in index.passages for t in p.search_texts()]

    def rows_of(self, owner: int) -> np.ndarray:
        """Which rows are entry ``owner``'s (a mask)."""
        return self.owners == owner

    def search(self, query: np.ndarray, k: int, *, without: np.ndarray | None = None,
               ) -> list[Hit]:
        """The ``k`` best entries (each scored by its best row) for one normalised vector;
        ``without``: the rows left out (a mask)."""
        scores = self.vectors @ query
        if without is not None:
            scores = np.where(without, -np.inf, scores)
        best = np.full(len(self.index.passages), -np.inf)
        np.maximum.at(best, self.owners, scores)
        order = np.argsort(-best, kind="stable")[:k]
        return [Hit(self.index.passages[int(i)], float(best[i])) for i in order
                if np.isfinite(best[i])]
