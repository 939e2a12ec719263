"""acme_bank's documents: its help centre's pages (HTML, also served by a real local HTTP
server, as its README shows) and its privacy notice (a PDF written by fpdf2)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.definition.loader import load_bot
from bot.runtime import BotRuntime
from bot.server.pipeline import TurnPipeline
from foundation.messages import BotReply, UserMessage
from retrieval.documents import ChunkSettings, read_source
from retrieval.sites.crawl import crawl_site
from retrieval.sites.settings import SiteSource
from retrieval.sites.store import read_site

ACME = Path(__file__).resolve().parents[2] / "example_bots" / "acme_bank"
CHUNKS = ChunkSettings()


@pytest.fixture
def help_site() -> Iterator[str]:
    """acme_bank's help/ folder served by Python's own HTTP server, as the README does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(ACME / "help")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the help site's server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def test_the_help_pages_crawled_read_as_the_files_and_cite_their_headings(
        help_site: str, tmp_path: Path) -> None:
    source = SiteSource(url=f"{help_site}/", allow_private=True, delay_s=0.0)
    read = crawl_site(source, cache=tmp_path / "cache.json", snapshot=tmp_path / "site.json")
    assert read.report.pages == 3 and not read.report.warnings
    crawled = read_site(tmp_path / "site.json", display="help", chunking=CHUNKS).passages
    files = [p for name in ("index.html", "accessibility.html", "complaints.html")
             for p in read_source(ACME / "help" / name, display=f"help/{name}",
                                  chunking=CHUNKS).passages]
    assert sorted((p.title, p.text) for p in crawled) == sorted((p.title, p.text) for p in files)
    cited = {p.title: p.source for p in crawled}
    assert cited["Making a complaint | Acme Bank help > If you are not happy with our answer"] \
        == f"{help_site}/complaints.html#ombudsman"
    assert cited["Accessibility and extra support | Acme Bank help > Calling us with Relay UK"] \
        == f"{help_site}/accessibility.html#relay-uk"
    everything = " ".join(p.text for p in crawled)
    assert "cookies" not in everything and "fictional bank" not in everything  # chrome
    assert "Step: Our final response to most complaints; When: within 8 weeks" in everything


def test_the_privacy_notice_pdf_is_cited_by_page_under_its_outline() -> None:
    document = read_source(ACME / "faq" / "privacy-notice.pdf",
                           display="faq/privacy-notice.pdf", chunking=CHUNKS)
    assert (document.kind, document.pages, document.warnings) == ("PDF", 2, ())
    cited = {p.id: p.source for p in document.passages}
    assert cited["privacy-notice-how-long-we-keep-it"] == "faq/privacy-notice.pdf, page 1"
    assert cited["privacy-notice-your-rights"] == "faq/privacy-notice.pdf, page 2"
    rights = next(p for p in document.passages if p.id == "privacy-notice-your-rights")
    assert rights.title == "Acme Bank privacy notice > Your rights"
    assert "free of charge" in rights.text and "Your rights" not in rights.text


def test_acme_bank_reads_its_documents() -> None:
    sources = load_bot(ACME).config.faq
    assert sources is not None
    assert {"faq/*.pdf", "help/"} <= set(sources.sources)


def test_a_bot_built_from_the_served_help_site_answers_with_links(
        help_site: str, tmp_path: Path) -> None:
    """The README's bot from a website: one source, the site's address."""
    root = tmp_path / "helpsite"
    root.mkdir()
    (root / "bot.yaml").write_text(
        f"name: helpsite\nfaq:\n  sources: [{{url: '{help_site}/', allow_private: true}}]\n")
    assert main(["train", str(root)]) == 0
    runtime = BotRuntime.load(load_bot(root))

    async def ask(text: str) -> BotReply:
        return await TurnPipeline(runtime).handle(
            UserMessage(sender="u1", text=text, channel="rest"))

    try:
        reply = asyncio.run(ask("can I get my statements in braille?"))
    finally:
        asyncio.run(runtime.close())
    assert reply.kind == "faq", reply
    assert [c.source for c in reply.citations] == [f"{help_site}/accessibility.html#other-formats"]
    assert "braille" in reply.text
