"""The knowledge gaps to write next: the questions the bot answered "I don't know" to,
grouped by topic (average-linkage clusters of their embeddings, as ``bot suggest`` groups
questions), biggest first, each with its count and a few examples.

Embeddings are kept per question text (a bounded cache), so the dashboard embeds only the
questions it has not seen before.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from bot.learning.mining import MiningSettings, topic_words
from retrieval.embedder import Embedder

EXAMPLES = 3
MAX_QUESTIONS = 1000  # the most recent unanswered questions grouped
CACHED = 20_000


@dataclass(frozen=True)
class Gap:
    """A topic the bot does not know: its words, how often it was asked, examples."""

    topic: str
    count: int
    examples: tuple[str, ...]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


class Gaps:
    """Groups unanswered questions with ``embedder`` (None: identical questions only)."""

    def __init__(self, embedder: Embedder | None, *,
                 distance: float = MiningSettings.cluster_distance) -> None:
        self.embedder = embedder
        self.distance = distance
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def _embed(self, texts: list[str]) -> np.ndarray:
        assert self.embedder is not None
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                self._vectors[text] = vector
            while len(self._vectors) > CACHED:
                self._vectors.popitem(last=False)
        return np.stack([self._vectors[t] for t in texts])

    def _labels(self, texts: list[str]) -> list[int]:
        if self.embedder is None or len(texts) < 2:
            return list(range(len(texts)))
        clustering = AgglomerativeClustering(n_clusters=None, metric="cosine",
                                             linkage="average",
                                             distance_threshold=self.distance)
        return [int(label) for label in clustering.fit_predict(self._embed(texts))]

    def find(self, questions: Sequence[str], *, top: int = 10) -> list[Gap]:
        """The ``top`` biggest groups of ``questions`` (blocking: it may embed)."""
        asked = Counter(_key(q) for q in questions[-MAX_QUESTIONS:] if q.strip())
        shown = {_key(q): " ".join(q.split()) for q in questions}
        texts = sorted(asked)
        groups: dict[int, list[str]] = {}
        for text, label in zip(texts, self._labels(texts), strict=True):
            groups.setdefault(label, []).append(text)
        everything = list(asked)
        gaps = []
        for members in groups.values():
            members.sort(key=lambda t: (-asked[t], t))
            examples = tuple(shown[t] for t in members[:EXAMPLES])
            words = topic_words(members, everything, members[0])
            gaps.append(Gap(" ".join(words) or examples[0], sum(asked[t] for t in members),
                            examples))
        gaps.sort(key=lambda g: (-g.count, g.topic))
        return gaps[:top]
