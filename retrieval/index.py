"""A FAISS index over FAQ passages, several vectors per passage, saved with a manifest.

Small indexes are exact (``IndexFlatIP`` on normalised vectors = cosine similarity); from
``HNSW_FROM`` vectors on an HNSW graph is used. A passage's score is its best vector's score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.artifacts import Artifact
from retrieval.documents import Passage, check_unique
from retrieval.embedder import Embedder, embed_passages
from retrieval.errors import RetrievalError

FORMAT_VERSION = 1
HNSW_FROM = 50_000


@dataclass(frozen=True)
class Hit:
    """A passage found for a query, with its cosine score."""

    passage: Passage
    score: float


def relevant_hits(hits: Sequence[Hit], *, threshold: float,
                  margin: float | None = None) -> list[Hit]:
    """The hits scoring at least ``threshold`` and, with a ``margin``, at most that far below
    the best hit (passages much weaker than the best match mostly distract the model)."""
    if not hits:
        return []
    floor = threshold if margin is None else max(threshold, max(h.score for h in hits) - margin)
    return [h for h in hits if h.score >= floor]


def _new_index(dimensions: int, size: int) -> faiss.Index:
    if size >= HNSW_FROM:
        index = faiss.IndexHNSWFlat(dimensions, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
        return index
    return faiss.IndexFlatIP(dimensions)


class FaqIndex:
    """Passages plus a FAISS index of their search texts."""

    def __init__(self, passages: list[Passage], owners: np.ndarray, index: faiss.Index,
                 manifest: dict[str, Any]) -> None:
        self.passages = passages
        self.owners = owners
        self.index = index
        self.manifest = manifest
        self._by_id = {p.id: i for i, p in enumerate(passages)}

    @classmethod
    def build(cls, passages: list[Passage], embedder: Embedder, *, progress: bool = False,
              manifest: dict[str, Any] | None = None) -> FaqIndex:
        """Embed every passage's search texts and index them."""
        check_unique(passages)
        texts, owners, passage_rows = _search_texts(passages, offset=0)
        vectors = _vectors(embedder, texts, passage_rows, progress=progress)
        index = _new_index(embedder.dimensions, len(texts))
        if len(texts):
            index.add(vectors)
        info = dict(manifest or {})
        info.update(format=FORMAT_VERSION, model=embedder.name, dimensions=embedder.dimensions)
        return cls(list(passages), owners, index, info)

    def __len__(self) -> int:
        return len(self.passages)

    def get(self, passage_id: str) -> Passage | None:
        position = self._by_id.get(passage_id)
        return None if position is None else self.passages[position]

    def search_vector(self, query: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` best passages for one normalised query vector."""
        if self.index.ntotal == 0 or k <= 0:
            return []
        wanted = min(self.index.ntotal, max(4 * k, k + 16))
        scores, rows = self.index.search(query.reshape(1, -1).astype(np.float32), wanted)
        best: dict[int, float] = {}
        for score, row in zip(scores[0], rows[0], strict=True):
            if row < 0:
                continue
            owner = int(self.owners[row])
            if owner not in best:
                best[owner] = float(score)
        ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
        return [Hit(self.passages[i], s) for i, s in ranked]

    def add(self, passages: list[Passage], embedder: Embedder) -> None:
        """Add passages (ids must be new)."""
        check_unique([*self.passages, *passages])
        texts, owners, passage_rows = _search_texts(passages, offset=len(self.passages))
        if texts:
            self.index.add(_vectors(embedder, texts, passage_rows, progress=False))
        self.passages.extend(passages)
        self.owners = np.concatenate([self.owners, owners])
        self._by_id = {p.id: i for i, p in enumerate(self.passages)}

    def remove(self, passage_ids: Iterable[str]) -> int:
        """Remove passages by id; returns how many were removed."""
        doomed = {self._by_id[i] for i in passage_ids if i in self._by_id}
        if not doomed:
            return 0
        keep_rows = np.array([int(o) not in doomed for o in self.owners], dtype=bool)
        vectors = self.index.reconstruct_n(0, self.index.ntotal)[keep_rows]
        remap = {}
        kept: list[Passage] = []
        for old, passage in enumerate(self.passages):
            if old not in doomed:
                remap[old] = len(kept)
                kept.append(passage)
        self.owners = np.array([remap[int(o)] for o in self.owners[keep_rows]], dtype=np.int64)
        self.index = _new_index(self.index.d, len(vectors))
        if len(vectors):
            self.index.add(vectors)
        self.passages = kept
        self._by_id = {p.id: i for i, p in enumerate(kept)}
        return len(doomed)

    def save(self, directory: Path) -> None:
        """Write index, passages and manifest atomically (a crash leaves the old copy)."""
        manifest = dict(self.manifest, passages=len(self.passages), vectors=self.index.ntotal,
                        index_type="hnsw" if isinstance(self.index, faiss.IndexHNSWFlat)
                        else "flat")
        with index_artifact(directory).write(manifest) as staging:
            faiss.write_index(self.index, str(staging / "index.faiss"))
            np.save(staging / "owners.npy", self.owners)
            with (staging / "passages.jsonl").open("w", encoding="utf-8") as out:
                for passage in self.passages:
                    out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, directory: Path) -> FaqIndex:
        """Load a saved index; a missing or damaged one raises :class:`RetrievalError`."""
        manifest = index_artifact(directory).manifest()
        if manifest is None:
            raise RetrievalError(f"{directory}: no FAQ index here; run `bot train` first")
        part = directory / "index.faiss"  # the file being read, named in the error
        try:
            index = faiss.read_index(str(part))
            part = directory / "owners.npy"
            owners = np.load(part)
            part = directory / "passages.jsonl"
            with part.open(encoding="utf-8") as lines:
                passages = [_passage(json.loads(line)) for line in lines if line.strip()]
        except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise RetrievalError(f"{part}: FAQ index file is damaged ({exc}); run `bot train "
                                 "--force`") from exc
        if index.ntotal != len(owners) or (len(owners) and int(owners.max()) >= len(passages)):
            raise RetrievalError(f"{directory}: FAQ index files disagree; run `bot train --force`")
        return cls(passages, owners, index, manifest)


def index_artifact(directory: Path) -> Artifact:
    """The saved index in ``directory`` (its manifest says what it was built from)."""
    return Artifact(directory, FORMAT_VERSION)


def _passage(data: dict[str, Any]) -> Passage:
    data["alternatives"] = tuple(data.get("alternatives", ()))
    data["translations"] = tuple(tuple(pair) for pair in data.get("translations", ()))
    return Passage(**data)


def _search_texts(passages: list[Passage], *,
                  offset: int) -> tuple[list[str], np.ndarray, list[bool]]:
    """Every passage's search texts, the passage each belongs to, and which are passage text
    (question + answer, the free text, a translated answer) rather than questions."""
    texts: list[str] = []
    owners: list[int] = []
    passage_rows: list[bool] = []
    for position, passage in enumerate(passages, start=offset):
        for as_passage, own in ((False, passage.question_texts()),
                                (True, passage.passage_texts())):
            texts.extend(own)
            owners.extend([position] * len(own))
            passage_rows.extend([as_passage] * len(own))
    return texts, np.array(owners, dtype=np.int64), passage_rows


def _vectors(embedder: Embedder, texts: list[str], passage_rows: list[bool], *,
             progress: bool) -> np.ndarray:
    """The rows' vectors: questions as queries, passage text as passages when the embedder
    tells them apart (``retrieval.embedder.PassageEmbedder``), all in one call otherwise."""
    if not hasattr(embedder, "embed_passages"):
        return embedder.embed(texts, progress=progress)
    vectors = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
    for as_passage in (False, True):
        rows = [i for i, flag in enumerate(passage_rows) if flag == as_passage]
        if rows:
            chosen = [texts[i] for i in rows]
            vectors[rows] = embed_passages(embedder, chosen, progress=progress) if as_passage \
                else embedder.embed(chosen, progress=progress)
    return vectors
