from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.documents import Passage
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import RetrievalError
from retrieval.index import FaqIndex, Hit, relevant_hits

PASSAGES = [
    Passage("card", "Cards arrive in a week.", "t", question="When will my card arrive?"),
    Passage("pin", "Reset your PIN in the app.", "t", question="How do I change my PIN?"),
    Passage("fx", "We charge 0.5% for currency exchange.", "t",
            question="What is the exchange rate fee?", alternatives=("currency conversion cost",)),
]


def test_search_ranks_the_relevant_passage_first(embedder: SentenceEmbedder) -> None:
    index = FaqIndex.build(PASSAGES, embedder)
    hits = index.search_vector(embedder.embed(["my new card hasn't come yet"])[0], k=2)
    assert hits[0].passage.id == "card"
    assert len(hits) == 2 and hits[0].score > hits[1].score
    assert len({h.passage.id for h in hits}) == 2  # one hit per passage, not per vector


def test_save_load_roundtrip_gives_identical_results(tmp_path: Path,
                                                     embedder: SentenceEmbedder) -> None:
    index = FaqIndex.build(PASSAGES, embedder, manifest={"sources": {"a": "1"}})
    index.save(tmp_path / "idx")
    loaded = FaqIndex.load(tmp_path / "idx")
    query = embedder.embed(["fee for converting currency"])[0]
    assert [(h.passage, round(h.score, 5)) for h in loaded.search_vector(query, 3)] == \
        [(h.passage, round(h.score, 5)) for h in index.search_vector(query, 3)]
    assert loaded.manifest["model"] == "all-MiniLM-L6-v2"
    assert loaded.manifest["dimensions"] == 384 and loaded.manifest["passages"] == 3


def test_add_and_remove(embedder: SentenceEmbedder) -> None:
    index = FaqIndex.build(PASSAGES[:2], embedder)
    index.add([PASSAGES[2]], embedder)
    query = embedder.embed(["currency conversion cost"])[0]
    assert index.search_vector(query, 1)[0].passage.id == "fx"
    assert index.remove(["fx", "missing"]) == 1
    assert index.get("fx") is None and len(index) == 2
    assert index.search_vector(query, 3)[0].passage.id != "fx"
    assert index.index.ntotal == len(index.owners) == 4
    with pytest.raises(RetrievalError, match="duplicate FAQ id 'pin'"):
        index.add([PASSAGES[1]], embedder)


def test_missing_or_damaged_index_is_a_clear_error(tmp_path: Path,
                                                   embedder: SentenceEmbedder) -> None:
    with pytest.raises(RetrievalError, match="run `bot train`"):
        FaqIndex.load(tmp_path / "none")
    FaqIndex.build(PASSAGES, embedder).save(tmp_path / "idx")
    (tmp_path / "idx" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(RetrievalError, match="damaged"):
        FaqIndex.load(tmp_path / "idx")


def test_empty_query_results_for_empty_index(embedder: SentenceEmbedder) -> None:
    index = FaqIndex.build([], embedder)
    assert index.search_vector(np.zeros(384, dtype=np.float32), 3) == []


def test_relevant_hits_keep_those_above_the_threshold_and_near_the_best() -> None:
    hits = [Hit(Passage(name, name, "faq.yaml"), score)
            for name, score in [("a", 0.70), ("b", 0.65), ("c", 0.58), ("d", 0.40)]]

    def ids(kept: list[Hit]) -> list[str]:
        return [h.passage.id for h in kept]

    assert ids(relevant_hits(hits, threshold=0.55)) == ["a", "b", "c"]
    assert ids(relevant_hits(hits, threshold=0.55, margin=0.08)) == ["a", "b"]
    assert ids(relevant_hits(hits, threshold=0.55, margin=0.0)) == ["a"]
    assert ids(relevant_hits(hits, threshold=0.75, margin=0.5)) == []  # the threshold holds
    assert relevant_hits([], threshold=0.5, margin=0.1) == []
