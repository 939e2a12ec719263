"""`bot validate DIR`: check a bot definition and its FAQ files without training."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence

from bot.commands import bot_folder_argument, loaded_bot
from bot.definition.config import BotDefinition
from bot.errors import library_errors
from retrieval.audience import agent_instructions
from retrieval.documents import Document, Passage
from retrieval.knowledge import FaqSource, read_sources


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check bot.yaml and the files it references")
    bot_folder_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = loaded_bot(args)
    config = bot.config
    passages: list[Passage] = []
    documents: list[Document] = []
    if config.faq:
        sources = bot.faq_sources()
        with library_errors():  # a duplicate id is the error `bot train` gives
            passages, documents = read_sources(sources, config.faq)
        for line in _read_per_source(bot, sources, documents):
            print(line)
    for name in bot.uncovered_faq_files():
        print(f"warning: {name} is in an FAQ folder but no faq.sources entry reads it "
              "(add a pattern for it, or list the folder itself)")
    for passage, words in agent_instructions(passages):
        print(f"warning: {passage.source}: {passage.id!r} reads like an instruction to an "
              f"agent ({words!r}); customers would be shown it as written: list its file in "
              "faq.agent_sources, or rewrite it for customers")
    print(f"{bot.file}: ok — bot {config.name!r}, {len(config.intents)} intents, "
          f"{len(config.responses)} responses, {len(passages)} FAQ passages, "
          f"channels: {', '.join(config.channels) or 'none'}")
    return 0


def _read_per_source(bot: BotDefinition, sources: Sequence[FaqSource],
                     documents: Sequence[Document]) -> list[str]:
    """What each ``faq.sources`` and ``faq.agent_sources`` entry read: its documents by
    format, pages, passages, and a line for each warning (a page without text)."""
    assert bot.config.faq is not None
    read = {source.path: document for source, document in zip(sources, documents, strict=True)}
    lines = []
    for key in ("sources", "agent_sources"):
        for i, pattern in enumerate(getattr(bot.config.faq, key)):
            found = [read[path] for path in bot.source_files(pattern) if path in read]
            kinds = Counter(document.kind for document in found)
            pages = sum(document.pages for document in found)
            warnings = [w for document in found for w in document.warnings]
            counts = [_count(len(found), "document") + " (" + ", ".join(
                f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")"]
            if pages:
                counts.append(_count(pages, "page"))
            counts.append(_count(sum(len(d.passages) for d in found), "passage"))
            if warnings:
                counts.append(_count(len(warnings), "warning"))
            lines.append(f"faq.{key}[{i}] {pattern}: {', '.join(counts)}")
            lines.extend(f"warning: {warning}" for warning in warnings)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
