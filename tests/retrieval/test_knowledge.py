from __future__ import annotations

import json

import pytest

from bot.build import build_index
from bot.definition.loader import load_bot
from bot.errors import ConfigError, RetrievalError
from bot.runtime import load_knowledge
from retrieval.documents import CHUNKING_RULES
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import SourceError
from retrieval.knowledge import read_sources

from ..conftest import MakeBot


def test_index_is_rebuilt_only_when_sources_change(make_bot: MakeBot,
                                                   embedder: SentenceEmbedder) -> None:
    root = make_bot()
    bot = load_bot(root)
    index, rebuilt = build_index(bot, embedder)
    assert rebuilt and len(index) == 3
    manifest_time = (bot.index_dir / "manifest.json").stat().st_mtime_ns
    _, rebuilt = build_index(bot, embedder)
    assert not rebuilt
    assert (bot.index_dir / "manifest.json").stat().st_mtime_ns == manifest_time

    faq = root / "faq" / "main.yaml"
    faq.write_text(faq.read_text() + "- id: new\n  question: New?\n  answer: Yes.\n")
    with pytest.raises(RetrievalError, match="out of date"):
        load_knowledge(bot, embedder)
    index, rebuilt = build_index(bot, embedder)
    assert rebuilt and len(index) == 4
    hits = load_knowledge(bot, embedder).search("where is my card", 1)
    assert hits[0].passage.id == "card-not-arrived"
    assert hits[0].passage.source.endswith("faq/main.yaml")


def test_damaged_index_is_rebuilt_by_train(make_bot: MakeBot, embedder: SentenceEmbedder) -> None:
    bot = load_bot(make_bot())
    build_index(bot, embedder)
    (bot.index_dir / "owners.npy").write_bytes(b"junk")
    _, rebuilt = build_index(bot, embedder)
    assert rebuilt
    assert len(load_knowledge(bot, embedder).index) == 3


def test_missing_source_glob_names_the_key(make_bot: MakeBot, embedder: SentenceEmbedder) -> None:
    root = make_bot(files={})
    with pytest.raises(ConfigError, match=r"faq\.sources\[0\]: no FAQ file matches"):
        build_index(load_bot(root), embedder)


def test_an_index_chunked_by_older_rules_is_out_of_date_and_rebuilt(
        make_bot: MakeBot, embedder: SentenceEmbedder) -> None:
    bot = load_bot(make_bot())
    build_index(bot, embedder)
    manifest_path = bot.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["chunking"]["rules"] == CHUNKING_RULES
    del manifest["chunking"]["rules"]  # as an index built before sentence chunking
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(RetrievalError, match=r"out of date \(chunking changed\)"):
        load_knowledge(bot, embedder)
    _, rebuilt = build_index(bot, embedder)
    assert rebuilt


HELP_BOT = """
name: help
faq:
  sources: [faq/]
"""


def test_a_help_center_folder_loads_with_no_hand_edits(make_bot: MakeBot) -> None:
    """The same question in two articles, the same heading in two articles, and an article
    that is front matter only (hidden): each passage gets its own id, the empty file is
    skipped with a warning; named on its own, the empty file is an error."""
    root = make_bot(HELP_BOT, files={
        "faq/org-faqs.md": "## How do I change the name of my Organization?\n\nIn Settings.\n\n"
                           "## Permissions\n\nOwners only.\n",
        "faq/server-faqs.md": "## How do I change the name of my Organization?\n\nIn the "
                              "admin portal.\n\n## Permissions\n\nAdmins.\n",
        "faq/send/send-ios.md": "---\ntitle: Send from iOS\nhidden: true\n---\n",
        "faq/kept.yaml": "- id: permissions\n  question: Who may edit?\n  answer: Owners.\n"})
    bot = load_bot(root)
    passages, documents = read_sources(bot.faq_sources(), bot.config.faq)
    assert sorted(p.id for p in passages) == [
        "org-faqs-how-do-i-change-the-name-of-my", "org-faqs-permissions", "permissions",
        "server-faqs-how-do-i-change-the-name-of-my", "server-faqs-permissions"]
    warnings = [w for d in documents for w in d.warnings]
    assert len(warnings) == 1
    assert warnings[0].endswith("faq/send/send-ios.md: contains no FAQ entries: skipped")
    alone = load_bot(make_bot(HELP_BOT.replace("faq/]", "faq/send/send-ios.md]"), files={
        "faq/send/send-ios.md": "---\ntitle: Send from iOS\n---\n"}, name="alone"))
    with pytest.raises(SourceError, match=r"send-ios\.md: contains no FAQ entries$"):
        read_sources(alone.faq_sources(), alone.config.faq)
