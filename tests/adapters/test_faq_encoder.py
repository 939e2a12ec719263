"""The bot's own FAQ encoder (adapters/training/faq_encoder.py) and the policy's cross-fitted
folds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adapters.answering.masked_search import MaskedSearch
from adapters.answering.policy_data import _fold_searches
from adapters.errors import ModelError
from adapters.training.faq_encoder import load_faq_encoder, train_faq_encoder, tunable, tuning_texts
from retrieval.documents import Passage
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.index import FaqIndex
from tests.adapters.test_answer_policy import PASSAGES

ROUNDS = 3


def mean_margin(embedder: SentenceEmbedder, passages: Sequence[Passage]) -> float:
    """How much closer each alternative is to its own question than to the others'."""
    questions = embedder.embed([p.question or "" for p in passages])
    margins = []
    for n, passage in enumerate(passages):
        scores = embedder.embed(list(passage.alternatives)) @ questions.T
        others = np.delete(scores, n, axis=1).max(axis=1)
        margins.extend(scores[:, n] - others)
    return float(np.mean(margins))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory,
          embedder: SentenceEmbedder) -> tuple[Path, SentenceEmbedder]:
    folder = tmp_path_factory.mktemp("encoder") / "faq_encoder"
    model, rebuilt = train_faq_encoder(folder, embedder, PASSAGES, ROUNDS)
    assert rebuilt
    return folder, model


def test_tuning_pulls_alternatives_to_their_own_entry(
        tuned: tuple[Path, SentenceEmbedder], embedder: SentenceEmbedder) -> None:
    _folder, model = tuned
    assert model.name != embedder.name and model.name.startswith(embedder.name)
    assert mean_margin(model, PASSAGES) > mean_margin(embedder, PASSAGES) + 0.02


def test_a_saved_encoder_is_reused_and_loads_as_tuned(
        tuned: tuple[Path, SentenceEmbedder], embedder: SentenceEmbedder) -> None:
    folder, model = tuned
    again, rebuilt = train_faq_encoder(folder, embedder, PASSAGES, ROUNDS)
    assert not rebuilt and again.name == model.name
    loaded = load_faq_encoder(folder, embedder)
    assert loaded.name == model.name
    text = ["my card never came"]
    assert np.allclose(loaded.embed(text), model.embed(text), atol=1e-5)
    assert not np.allclose(loaded.embed(text), embedder.embed(text), atol=1e-3)


def test_other_texts_or_rounds_tune_a_new_encoder_with_a_new_name(
        tmp_path: Path, tuned: tuple[Path, SentenceEmbedder], embedder: SentenceEmbedder) -> None:
    folder, model = tuned
    copy = tmp_path / "faq_encoder"
    shutil.copytree(folder, copy)
    fewer = [PASSAGES[0], PASSAGES[1], PASSAGES[2]]
    changed, rebuilt = train_faq_encoder(copy, embedder, fewer, ROUNDS)
    assert rebuilt and changed.name != model.name
    longer, rebuilt = train_faq_encoder(copy, embedder, fewer, ROUNDS + 1)
    assert rebuilt and longer.name not in (model.name, changed.name)


def test_no_tuning_gives_the_stock_encoder_and_removes_an_old_one(
        tmp_path: Path, tuned: tuple[Path, SentenceEmbedder], embedder: SentenceEmbedder) -> None:
    folder, _model = tuned
    copy = tmp_path / "faq_encoder"
    shutil.copytree(folder, copy)
    model, rebuilt = train_faq_encoder(copy, embedder, PASSAGES, 0)
    assert model is embedder and not rebuilt and not copy.exists()
    assert load_faq_encoder(copy, embedder) is embedder
    # too little to tune on: one entry, or entries without alternatives
    assert not tunable(PASSAGES[:1])
    bare = [Passage(p.id, p.text, p.source, question=p.question) for p in PASSAGES]
    assert not tunable(bare) and tuning_texts(bare)[0] == [p.question for p in PASSAGES]
    assert train_faq_encoder(tmp_path / "other", embedder, bare, ROUNDS)[0] is embedder


def test_a_damaged_encoder_is_named_then_tuned_again(
        tmp_path: Path, tuned: tuple[Path, SentenceEmbedder], embedder: SentenceEmbedder) -> None:
    folder, model = tuned
    copy = tmp_path / "faq_encoder"
    shutil.copytree(folder, copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ModelError, match="FAQ encoder is incomplete"):
        load_faq_encoder(copy, embedder)
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(b"not a model")
    manifest = json.loads((folder / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="FAQ encoder is damaged"):
        load_faq_encoder(copy, embedder)
    again, rebuilt = train_faq_encoder(copy, embedder, PASSAGES, ROUNDS)
    assert rebuilt and again.name == model.name


class Recording:
    """The stock encoder, noting which FAQ entries each fold's encoder was "tuned" on and
    the vectors it gave (this test is about which texts each fold sees)."""

    def __init__(self, embedder: SentenceEmbedder, kept: Sequence[Passage],
                 calls: list[tuple[list[Passage], np.ndarray]]) -> None:
        self.name, self.embedder, self.kept, self.calls = embedder.name, embedder, kept, calls

    @property
    def dimensions(self) -> int:
        return self.embedder.dimensions

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        self.calls.append((list(self.kept), vectors))
        return vectors


def alternative_rows(index: FaqIndex, search: MaskedSearch) -> list[tuple[int, int]]:
    """(row, entry) of every alternative in the index: the questions folds ask."""
    return [(row, int(owner)) for row, (text, owner)
            in enumerate(zip(search.texts, search.owners, strict=True))
            if text in index.passages[int(owner)].alternatives]


def test_cross_fitted_folds_never_ask_a_question_its_encoder_was_tuned_on(
        embedder: SentenceEmbedder) -> None:
    passages = [*PASSAGES, *(
        Passage(f"extra-{n}", f"Answer {n}.", "faq.yaml", question=f"Question number {n}?",
                alternatives=(f"question {n} again", f"another way to ask {n}"))
        for n in range(6))]
    index = FaqIndex.build(passages, embedder)
    search = MaskedSearch(index)
    queries = alternative_rows(index, search)
    calls: list[tuple[list[Passage], np.ndarray]] = []

    def refit(kept: Sequence[Passage]) -> Embedder:
        return Recording(embedder, kept, calls)

    covered_in, uncovered_in, _ = _fold_searches(index, search, queries, refit)
    assert len(calls) == 5  # one encoder per fold
    assert set(covered_in) == set(uncovered_in) == {row for row, _ in queries}

    def tuned_on(fold: MaskedSearch) -> list[Passage]:
        return next(kept for kept, vectors in calls if vectors is fold.vectors)

    for row, owner in queries:
        entry = index.passages[owner]
        covered, uncovered = tuned_on(covered_in[row]), tuned_on(uncovered_in[row])
        # asked as covered: its entry was tuned on, this alternative was not
        assert entry.id in {p.id for p in covered}
        assert search.texts[row] not in {a for p in covered for a in p.alternatives}
        # asked as uncovered: the whole entry was left out of tuning
        assert entry.id not in {p.id for p in uncovered}
    # every entry is left out of one fold, every alternative is asked once as covered
    assert all(sum(p.id not in {k.id for k in kept} for kept, _ in calls) == 1
               for p in passages)


def test_an_entry_added_leaves_the_others_in_their_folds(embedder: SentenceEmbedder) -> None:
    def folds(passages: list[Passage]) -> dict[str, frozenset[str]]:
        """Each entry id -> the entries left out of tuning together with it."""
        index = FaqIndex.build(passages, embedder)
        search = MaskedSearch(index)
        calls: list[tuple[list[Passage], np.ndarray]] = []
        _fold_searches(index, search, alternative_rows(index, search),
                       lambda kept: Recording(embedder, kept, calls))
        everyone = {p.id for p in passages}
        left = [frozenset(everyone - {p.id for p in kept}) for kept, _ in calls]
        return {entry: group for group in left for entry in group}

    passages = [Passage(f"entry-{n}", f"Answer {n}.", "faq.yaml", question=f"Question {n}?",
                        alternatives=(f"question {n} again", f"another way to ask {n}"))
                for n in range(10)]
    before = folds(passages)
    added = Passage("cheques", "Post it to us.", "faq.yaml", question="How do I pay in a cheque?",
                    alternatives=("cheque deposit", "can I scan a cheque"))
    after = folds([*passages[:4], added, *passages[4:]])  # anywhere in the FAQ
    assert all(after[entry] - {"cheques"} == group for entry, group in before.items())
