"""The sentence embedder's query cache: a turn's second embedding of a message is free."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.embedder import CACHED_CALL, SentenceEmbedder


def test_query_vectors_are_cached_and_bulk_calls_are_not(embedder: SentenceEmbedder,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["my card has not arrived", "how do I reset my PIN"]
    first = embedder.embed(texts)
    calls: list[list[str]] = []
    real = SentenceEmbedder._encode

    def counted(self: SentenceEmbedder, batch: list[str], **kwargs: Any) -> np.ndarray:
        calls.append(list(batch))
        return real(self, batch, **kwargs)

    monkeypatch.setattr(SentenceEmbedder, "_encode", counted)
    again = embedder.embed([texts[1], texts[0], "a new question", texts[1]])
    assert calls == [["a new question"]]  # only the unseen text is encoded
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[3], first[1])
    again[0][:] = 0.0  # the caller's copy, not the cached vector
    np.testing.assert_array_equal(embedder.embed([texts[1]])[0], first[1])
    bulk = [f"question number {n}" for n in range(CACHED_CALL + 1)]
    embedder.embed(bulk)
    embedder.embed(bulk)
    assert calls[1:] == [bulk, bulk]  # index builds bypass the cache
