"""`bot validate DIR`: check a bot definition and its FAQ files without training."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bot.commands import bot_folder_argument, loaded_bot
from bot.definition.config import BotDefinition
from bot.errors import library_errors
from retrieval.audience import agent_instructions
from retrieval.documents import Document, Passage
from retrieval.knowledge import FaqSource, read_sources
from retrieval.sites.settings import site_of


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check bot.yaml and the files it references")
    bot_folder_argument(parser)
    parser.add_argument("--crawl", action="store_true",
                        help="read the sites faq.sources names now, as `bot train` would "
                        "(nothing is kept); without it, a site is reported as the last "
                        "`bot train` read it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bot = loaded_bot(args)
    config = bot.config
    passages: list[Passage] = []
    documents: list[Document] = []
    if config.faq:
        with tempfile.TemporaryDirectory() as work:
            sources, said = _site_sources(bot, bot.faq_sources(), crawl=args.crawl,
                                          work=Path(work))
            with library_errors():  # a duplicate id is the error `bot train` gives
                passages, documents = read_sources(sources, config.faq)
        for line in _read_per_source(bot, sources, documents, said):
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


def _site_sources(bot: BotDefinition, sources: Sequence[FaqSource], *, crawl: bool,
                  work: Path) -> tuple[list[FaqSource], dict[str, str]]:
    """The sources to read, a site as the last `bot train` kept it or, with ``crawl``, as
    read now (into ``work``: the bot's own files are left as they are); and how each site
    was read, by URL."""
    from retrieval.sites.crawl import crawl_site  # only a site's bot pays for aiohttp here

    kept, said = [], {}
    for source in sources:
        site = source.site
        if site is None:
            kept.append(source)
        elif crawl:
            snapshot = work / source.path.name
            with library_errors():
                crawl_site(site, cache=bot.crawl_cache(site), snapshot=snapshot,
                           keep_cache=False, progress=True)
            kept.append(dataclasses.replace(source, path=snapshot))
            said[site.url] = "read now"
        elif source.path.is_file():
            kept.append(source)
            said[site.url] = "as the last `bot train` read them"
        else:
            said[site.url] = ("not read yet: `bot train` reads it (`bot validate --crawl` "
                              "shows what it would read)")
    return kept, said


def _read_per_source(bot: BotDefinition, sources: Sequence[FaqSource],
                     documents: Sequence[Document], said: dict[str, str]) -> list[str]:
    """What each ``faq.sources`` and ``faq.agent_sources`` entry read: its documents by
    format (an export's articles each), pages, passages, drafts left out, and a line for
    each warning (a page without text)."""
    assert bot.config.faq is not None
    read = {source.path: document for source, document in zip(sources, documents, strict=True)}
    sites = {s.site.url: d for s, d in zip(sources, documents, strict=True) if s.site}
    lines = []
    for key in ("sources", "agent_sources"):
        for i, pattern in enumerate(getattr(bot.config.faq, key)):
            if (site := site_of(pattern)) is not None:
                lines.extend(_site_lines(f"faq.{key}[{i}] {site.url}", sites.get(site.url),
                                         said[site.url]))
                continue
            found = [read[path] for path in bot.source_files(pattern) if path in read]
            kinds: Counter[str] = Counter()
            for document in found:
                kinds[document.kind] += document.documents
            pages = sum(document.pages for document in found)
            warnings = [w for document in found for w in document.warnings]
            counts = [_count(kinds.total(), "document") + " (" + ", ".join(
                f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")"]
            if pages:
                counts.append(_count(pages, "page"))
            counts.append(_count(sum(len(d.passages) for d in found), "passage"))
            if drafts := sum(d.drafts for d in found):
                counts.append(_count(drafts, "draft") + " left out")
            if warnings:
                counts.append(_count(len(warnings), "warning"))
            lines.append(f"faq.{key}[{i}] {pattern}: {', '.join(counts)}")
            lines.extend(f"warning: {warning}" for warning in warnings)
    return lines


def _site_lines(head: str, document: Document | None, said: str) -> list[str]:
    """What a site gave: its pages and passages, and its pages that could not be read."""
    if document is None:
        return [f"{head}: {said}"]
    counts = [f"{_count(document.documents, 'web page')} ({said})",
              _count(len(document.passages), "passage")]
    if document.warnings:
        counts.append(_count(len(document.warnings), "warning"))
    return [f"{head}: {', '.join(counts)}", *(f"warning: {w}" for w in document.warnings)]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
