"""Settings of the FAQ index and the embedder (the ``faq`` and ``embedder`` sections)."""

from __future__ import annotations

from dataclasses import dataclass

from foundation.checks import between, check, non_empty, positive
from retrieval.sites.settings import SiteSource


@dataclass(frozen=True)
class FaqSettings:
    # files, globs, folders, and URLs of a site to crawl at `bot train` (retrieval/sites/)
    sources: tuple[str | SiteSource, ...] = check(non_empty)
    # written for the team (agent guidelines): they may ground a checked generated answer
    # and agents see them, but customers are never shown them as written
    agent_sources: tuple[str | SiteSource, ...] = ()
    top_k: int = check(positive, default=3)
    answer_threshold: float = check(between(-1.0, 1.0), default=0.55)
    chunk_words: int = check(positive, default=120)
    chunk_overlap: int = check(between(0, 1000), default=30)
    # read PDF pages without a text layer (scans) with Tesseract (Debian's tesseract-ocr)
    ocr: bool = False


@dataclass(frozen=True)
class EmbedderSettings:
    model: str = "all-MiniLM-L6-v2"
    # passes over the FAQ's entries to tune the bot's own copy at `bot train` (0: stock model)
    tuning_rounds: int = check(between(0, 100), default=9)
    batch_size: int = check(positive, default=64)
    device: str = "cpu"
