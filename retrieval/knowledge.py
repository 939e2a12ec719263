"""The FAQ knowledge: build the index when sources change, search it at run time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from retrieval.artifacts import file_digest
from retrieval.converters.base import ReadOptions
from retrieval.documents import (
    CHUNKING_RULES,
    ChunkSettings,
    Document,
    Extension,
    Passage,
    Place,
    check_unique,
    extend,
    qualified,
    read_source,
)
from retrieval.embedder import Embedder, embed_passages
from retrieval.errors import EmptySourceError, RetrievalError
from retrieval.index import FaqIndex, Hit, index_artifact
from retrieval.sentences import join_sentences, select_sentences, split_sentences
from retrieval.settings import FaqSettings
from retrieval.sites.settings import SiteSource
from retrieval.sites.store import read_site, site_digest


@dataclass(frozen=True)
class FaqSource:
    """One FAQ file: where it is, its stable ``name`` (the index fingerprint's key), how
    citations show it, and how errors name it (``display``; default: ``shown``). A crawled
    site (``site``) is the snapshot its last crawl wrote (``path``; retrieval/sites/)."""

    path: Path
    name: str
    shown: str
    display: str = ""
    audience: str = "customers"  # "agents": its passages are never quoted to customers
    site: SiteSource | None = None
    in_folder: bool = False  # named by a folder or glob: an empty file is skipped, not an error


def load_passages(sources: Sequence[FaqSource], faq: FaqSettings) -> list[Passage]:
    """Every source's passages, with the ``extends`` items of any source merged in; two
    passages with one id are an error naming where each was written."""
    return read_sources(sources, faq)[0]


def read_sources(sources: Sequence[FaqSource], faq: FaqSettings
                 ) -> tuple[list[Passage], list[Document]]:
    """:func:`load_passages`, and what was read from each source, in order (its pages and
    warnings: what `bot validate` reports)."""
    chunking = ChunkSettings(words=faq.chunk_words, overlap=faq.chunk_overlap)
    options = ReadOptions(ocr=faq.ocr)
    passages: list[Passage] = []
    places: list[Place] = []
    extensions: list[Extension] = []
    documents: list[Document] = []
    for source in sources:
        try:
            document = read_site(source.path, display=source.display or source.shown,
                                 chunking=chunking) if source.site is not None else \
                read_source(source.path, display=source.display or source.shown,
                            chunking=chunking, source=source.shown, options=options)
        except EmptySourceError as exc:
            if not source.in_folder:
                raise
            document = Document([], [], warnings=(f"{exc}: skipped",))
        passages.extend(replace(p, audience=source.audience) for p in document.passages)
        places.extend(document.places)
        extensions.extend(document.extensions)
        documents.append(document)
    passages = qualified(passages, places)
    check_unique(passages, places)
    return extend(passages, extensions), documents


def fingerprint(sources: Sequence[FaqSource], faq: FaqSettings,
                model: str) -> dict[str, object]:
    """What the index depends on: if any of it changes, the index is rebuilt."""
    found: dict[str, object] = {
        "model": model,
        "chunking": {"words": faq.chunk_words, "overlap": faq.chunk_overlap,
                     "rules": CHUNKING_RULES},
        "sources": {s.name: site_digest(s.path) if s.site else file_digest(s.path)
                    for s in sources},
    }
    agents = sorted(s.name for s in sources if s.audience == "agents")
    if agents:  # only then: the indexes of bots without them stay current
        found["agent_sources"] = agents
    if faq.ocr:  # the same: OCR adds the text of scanned pages
        found["ocr"] = True
    return found


def build_index(folder: Path, sources: Sequence[FaqSource], faq: FaqSettings,
                embedder: Embedder, *, force: bool = False,
                progress: bool = False) -> tuple[FaqIndex, bool]:
    """Build (or reuse) the index in ``folder``; returns it and whether it was rebuilt."""
    wanted = fingerprint(sources, faq, embedder.name)
    if not force and index_artifact(folder).is_current(wanted):
        try:
            return FaqIndex.load(folder), False
        except RetrievalError:
            pass  # damaged: rebuild below
    index = FaqIndex.build(load_passages(sources, faq), embedder, progress=progress,
                           manifest=wanted)
    index.save(folder)
    return index, True


@dataclass
class KnowledgeBase:
    """A loaded FAQ index and the embedder that queries it."""

    index: FaqIndex
    embedder: Embedder

    @classmethod
    def load(cls, folder: Path, sources: Sequence[FaqSource], faq: FaqSettings,
             embedder: Embedder) -> KnowledgeBase:
        """Load the trained index; refuse one built from other sources or another model."""
        index = FaqIndex.load(folder)
        stale = index_artifact(folder).stale(fingerprint(sources, faq, embedder.name),
                                             index.manifest)
        if stale:
            raise RetrievalError(f"{folder}: FAQ index is out of date ({', '.join(stale)} "
                                 "changed); run `bot train` again")
        return cls(index, embedder)

    def search(self, text: str, k: int, *, vector: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` passages most similar to ``text`` (``vector``: its embedding by this
        knowledge base's embedder, when the caller already has it)."""
        query = self.embedder.embed([text])[0] if vector is None else vector
        return self.index.search_vector(query, k)

    def excerpt(self, question: str, text: str) -> str:
        """The whole sentences of ``text`` closest to ``question`` by this knowledge base's
        embedder, in their order (:func:`retrieval.sentences.select_sentences`)."""
        sentences = split_sentences(text)
        if len(sentences) < 2:
            return text
        texts = [s.text for s in sentences]
        if hasattr(self.embedder, "embed_passages"):  # the sentences as passages (e5)
            query, rows = self.embedder.embed([question])[0], embed_passages(self.embedder, texts)
        else:  # one call, as before
            vectors = self.embedder.embed([question, *texts])
            query, rows = vectors[0], vectors[1:]
        return join_sentences(select_sentences(sentences, (rows @ query).tolist()))
