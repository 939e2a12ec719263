"""The bot's FAQ knowledge: build the index when sources change, search it at run time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.config import BotDefinition, FaqSettings
from bot.errors import ConfigError, RetrievalError
from retrieval.documents import ChunkSettings, Passage, file_digest, load_source
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex, Hit, read_manifest

INDEX_DIR = "faq_index"


def index_dir(bot: BotDefinition) -> Path:
    return bot.build_dir / INDEX_DIR


def source_files(bot: BotDefinition, faq: FaqSettings) -> list[Path]:
    """The FAQ files named in ``faq.sources`` (globs allowed), in a stable order."""
    files: list[Path] = []
    for i, pattern in enumerate(faq.sources):
        matches = sorted(bot.root.glob(pattern)) if any(c in pattern for c in "*?[") \
            else [bot.path(pattern)]
        matches = [m for m in matches if m.is_file()]
        if not matches:
            raise ConfigError(f"no FAQ file matches {pattern!r}", file=_shown(bot, bot.file),
                              path=f"faq.sources[{i}]")
        files.extend(m for m in matches if m not in files)
    return files


def _shown(bot: BotDefinition, path: Path) -> str:
    try:
        return str(path.relative_to(bot.root.parent))
    except ValueError:
        return str(path)


def load_passages(bot: BotDefinition, faq: FaqSettings) -> list[Passage]:
    chunking = ChunkSettings(words=faq.chunk_words, overlap=faq.chunk_overlap)
    passages: list[Passage] = []
    for file in source_files(bot, faq):
        passages.extend(load_source(file, display=_shown(bot, file), chunking=chunking))
    return passages


def fingerprint(bot: BotDefinition, faq: FaqSettings, model: str) -> dict[str, object]:
    """What the index depends on: if any of it changes, the index is rebuilt."""
    return {
        "model": model,
        "chunking": {"words": faq.chunk_words, "overlap": faq.chunk_overlap},
        "sources": {str(f.relative_to(bot.root)) if f.is_relative_to(bot.root) else str(f):
                    file_digest(f) for f in source_files(bot, faq)},
    }


def build_index(bot: BotDefinition, embedder: Embedder, *, force: bool = False,
                progress: bool = False) -> tuple[FaqIndex, bool]:
    """Build (or reuse) the FAQ index; returns the index and whether it was rebuilt."""
    faq = bot.config.faq
    if faq is None:
        raise ConfigError("this bot has no 'faq' section", file=_shown(bot, bot.file))
    target = index_dir(bot)
    wanted = fingerprint(bot, faq, embedder.name)
    manifest = read_manifest(target)
    if not force and manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        try:
            return FaqIndex.load(target), False
        except RetrievalError:
            pass  # damaged: rebuild below
    index = FaqIndex.build(load_passages(bot, faq), embedder, progress=progress, manifest=wanted)
    index.save(target)
    return index, True


@dataclass
class KnowledgeBase:
    """A loaded FAQ index and the embedder that queries it."""

    index: FaqIndex
    embedder: Embedder

    @classmethod
    def load(cls, bot: BotDefinition, embedder: Embedder) -> KnowledgeBase:
        """Load the trained index; refuse one built from other sources or another model."""
        faq = bot.config.faq
        if faq is None:
            raise ConfigError("this bot has no 'faq' section", file=_shown(bot, bot.file))
        index = FaqIndex.load(index_dir(bot))
        wanted = fingerprint(bot, faq, embedder.name)
        stale = [k for k, v in wanted.items() if index.manifest.get(k) != v]
        if stale:
            raise RetrievalError(
                f"{index_dir(bot)}: FAQ index is out of date ({', '.join(stale)} changed); "
                "run `bot train` again"
            )
        return cls(index, embedder)

    def search(self, text: str, k: int) -> list[Hit]:
        """The ``k`` passages most similar to ``text``."""
        return self.index.search_vector(self.embedder.embed([text])[0], k)
