"""Sentence embeddings with sentence-transformers, from a packaged model (MiniLM by default)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from retrieval.errors import EmbedderError
from retrieval.packaged_models import is_packaged, packaged_model_path

CACHED_CALL = 4  # calls with at most this many texts are query-time: their vectors are cached
CACHE_SIZE = 1024


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...


class PassageEmbedder(Embedder, Protocol):
    """An embedder that embeds passages (answers, document text) apart from queries
    (questions, the FAQ's questions included): e5 models prefix ``query:`` and
    ``passage:`` (``retrieval/multilingual.py``)."""

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...


def embed_passages(embedder: Embedder, texts: list[str], *,
                   progress: bool = False) -> np.ndarray:
    """Vectors of passage text: ``embedder.embed_passages`` when it has one
    (:class:`PassageEmbedder`), else ``embedder.embed``."""
    own = getattr(embedder, "embed_passages", None)
    if own is None:
        return embedder.embed(texts, progress=progress)
    vectors: np.ndarray = own(texts, progress=progress)
    return vectors


def resolve_embedding_model(name: str) -> str:
    """A local path for a packaged model name (``retrieval.packaged_models``), else ``name``
    unchanged (a path or hub id)."""
    return str(packaged_model_path(name)) if is_packaged(name) else name


class QueryCache:
    """The last ``CACHE_SIZE`` query vectors, least recently used first out (thread-safe)."""

    def __init__(self) -> None:
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()

    def rows(self, texts: list[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """The vectors of ``texts`` (at least one), ``encode`` called for those not cached."""
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, encode(missing), strict=True))
            known.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > CACHE_SIZE:
                    self._vectors.popitem(last=False)
        return np.stack([known[t] for t in texts])


class SentenceEmbedder:
    """An :class:`Embedder` backed by a sentence-transformers model, loaded on first use."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, path: Path | None = None,
                 device: str = "cpu", batch_size: int = 64) -> None:
        self.name = model  # what indexes and classifiers record they were built with
        self.path = path  # where to load it from, when not from ``model`` itself
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._dimensions: int | None = None
        self._lock = threading.Lock()
        # A turn embeds its message for the classifier and again for FAQ retrieval: the
        # second call is a cache hit.
        self._queries = QueryCache()

    def load(self) -> SentenceEmbedder:
        """Load the model now (idempotent, thread-safe)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self

    def fresh(self) -> SentenceEmbedder:
        """An unloaded copy of the same model (to tune without touching this one)."""
        return SentenceEmbedder(self.name, path=self.path, device=self.device,
                                batch_size=self.batch_size)

    def _load(self) -> Any:
        location = str(self.path) if self.path else resolve_embedding_model(self.name)
        if Path(location).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(location, device=self.device)
        except Exception as exc:  # third-party boundary: any load failure
            raise EmbedderError(f"cannot load embedding model {self.name!r} ({location}): {exc}") \
                from exc
        dimension_of = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        dims = dimension_of()
        if not dims:
            raise EmbedderError(f"embedding model {self.name!r} does not report its dimensions")
        self._dimensions = int(dims)
        return model

    def clear_cache(self) -> None:
        """Forget cached query vectors (after the model's weights changed, or to time it)."""
        self._queries.clear()

    def save(self, folder: Path) -> None:
        """Write the model (safetensors weights and its configuration) to ``folder``."""
        self.model.save(str(folder), create_model_card=False)

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer``."""
        self.load()
        return self._model

    @property
    def dimensions(self) -> int:
        self.load()
        assert self._dimensions is not None
        return self._dimensions

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as rows of an L2-normalised float32 matrix."""
        self.load()
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) > CACHED_CALL:
            return self._encode(texts, progress=progress)
        return self._queries.rows(texts, lambda missing: self._encode(missing, progress=progress))

    def _encode(self, texts: list[str], *, progress: bool) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
