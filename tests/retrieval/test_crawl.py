"""Web pages and sites as FAQ sources (retrieval/sites/), against a real local help center
(help_site.py): what a crawl reads and refuses, incremental re-crawls, private addresses,
and a bot trained from the site that answers from a page and re-trains incrementally."""

from __future__ import annotations

import dataclasses
import gzip
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.build import train
from bot.cli import main
from bot.definition.loader import load_bot
from bot.errors import ConfigError
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.errors import SourceError
from retrieval.passages import ChunkSettings
from retrieval.sites.crawl import SiteRead, crawl_site
from retrieval.sites.network import AddressPolicy
from retrieval.sites.settings import SiteSource
from retrieval.sites.sitemap import SitemapError, parse_sitemap
from retrieval.sites.store import read_site
from tests.retrieval.help_site import HelpSite, help_site

from ..conftest import MakeBot

PAGES = ("/help/", "/help/cards", "/help/fees", "/help/returns", "/help/cards/deep",
         "/help/cards/deeper")


@pytest.fixture
def site() -> Iterator[HelpSite]:
    with help_site() as served:
        yield served


def _site(url: str, **settings: object) -> SiteSource:
    return SiteSource(url=url, **{"allow_private": True, "delay_s": 0.0,
                                  "max_page_bytes": 1_000_000, **settings})  # type: ignore[arg-type]


def _crawl(source: SiteSource, folder: Path) -> tuple[SiteRead, dict[str, Any]]:
    read = crawl_site(source, cache=folder / "cache.json", snapshot=folder / "site.json")
    return read, json.loads((folder / "site.json").read_text())


def test_a_sitemap_is_read_within_the_sites_rules_and_bad_pages_are_named(
        site: HelpSite, tmp_path: Path) -> None:
    read, snapshot = _crawl(_site(f"{site.base}/help/sitemap.xml"), tmp_path)
    base = site.base
    assert [p["url"] for p in snapshot["pages"]] == [base + p for p in PAGES]
    # the redirect is cited where it led; the copy of a page is merged into it
    assert snapshot["pages"][1]["also"] == [f"{base}/help/cards-copy"]
    assert [p["name"] for p in snapshot["pages"]] == [
        "home", "cards", "fees", "returns", "cards-deep", "cards-deeper"]
    warnings = read.report.warnings
    assert sorted(warnings) == sorted([
        f"1 sitemap address outside {base}/help/ was not read",
        f"{base}/help/missing: HTTP 404 (not found); skipped",
        f"{base}/help/statement: is application/pdf, not an HTML page; skipped",
        f"{base}/help/huge: is more than max_page_bytes (1,000,000 bytes); skipped",
        f"{base}/help/loop-a: redirect loop: {base}/help/loop-a -> {base}/help/loop-b -> "
        f"{base}/help/loop-a; skipped",
    ])
    asked = {path for path, _ in site.requests}
    assert "/help/private/staff" not in asked and "/blog/news" not in asked  # robots, prefix
    assert "/help/logo.png" not in asked
    assert read.report.disallowed == 1 and read.report.merged == 1
    document = read_site(tmp_path / "site.json", display="the site",
                         chunking=ChunkSettings())
    passages = {p.id: p for p in document.passages}
    lost = passages["cards-lost-card"]
    assert lost.source == f"{base}/help/cards#lost-card"
    assert lost.title == "Cards | Acme help > Lost card"
    assert passages["fees-international-transfers"].source == f"{base}/help/fees#transfers"
    assert passages["returns"].source == f"{base}/help/returns"
    everything = " ".join(p.text + p.title for p in document.passages)
    for chrome in ("FOOTER-TEXT", "SITE-HEADER", "Help home", "SECRET", "BLOG", "lorem"):
        assert chrome not in everything
    assert document.documents == 6 and document.warnings == tuple(warnings)


def test_a_start_page_is_crawled_to_its_depth_and_page_limits(site: HelpSite,
                                                              tmp_path: Path) -> None:
    read, snapshot = _crawl(_site(f"{site.base}/help/", max_depth=1), tmp_path)
    assert [p["url"] for p in snapshot["pages"]] == [site.base + p for p in PAGES[:4]]
    read, snapshot = _crawl(_site(f"{site.base}/help/", max_depth=0), tmp_path / "0")
    assert [p["url"] for p in snapshot["pages"]] == [f"{site.base}/help/"]
    read, snapshot = _crawl(_site(f"{site.base}/help/", max_pages=3), tmp_path / "3")
    assert len(snapshot["pages"]) == 3
    assert "max_pages (3) reached: 7 more pages found were not read" in \
        read.report.warnings
    # a polite rate within a time limit: a request every 0.4 s, 1.5 s in all
    read, snapshot = _crawl(_site(f"{site.base}/help/", delay_s=0.4, max_seconds=1.5),
                            tmp_path / "slow")
    assert 2 <= len(snapshot["pages"]) <= 3
    assert any(w.startswith("max_seconds (1.5 s) reached: ") for w in read.report.warnings)
    # a sitemap index, with the path prefix set: its sitemap's pages under /help/
    read, snapshot = _crawl(_site(f"{site.base}/sitemap-index.xml", prefix="/help/",
                                  max_depth=0), tmp_path / "index")
    assert [p["url"] for p in snapshot["pages"]] == [site.base + p for p in PAGES[:4]]


def test_a_recrawl_reads_again_only_what_changed(site: HelpSite, tmp_path: Path) -> None:
    source = _site(f"{site.base}/help/sitemap.xml")
    first, snapshot = _crawl(source, tmp_path)
    assert first.changed
    site.requests.clear()
    again, same = _crawl(source, tmp_path)
    report = again.report
    assert not again.changed and same["digest"] == snapshot["digest"]
    assert report.converted == 0 and report.not_modified == 6 and report.unchanged == 2
    for path in ("/help/", "/help/cards", "/help/fees", "/help/cards/deep"):
        assert site.statuses(path) == [304], path  # by ETag, and by Last-Modified (fees)
    assert site.statuses("/help/returns") == [200]  # neither: its hash is unchanged
    site.fee, site.requests = "7 pounds", []
    changed, after = _crawl(source, tmp_path)
    report = changed.report
    assert changed.changed and report.converted == 1
    assert site.statuses("/help/fees") == [200] and site.statuses("/help/cards") == [304]
    assert "7 pounds" in json.dumps(after["pages"][2]) and after["digest"] != same["digest"]
    # a page that fails for a while keeps the copy read last; one that is gone is dropped
    site.broken, site.slow = {"/help/cards"}, {"/help/cards/deep"}
    kept, snapshot = _crawl(_site(source.url, timeout_s=0.3), tmp_path)
    assert [p["url"] for p in snapshot["pages"]] == [site.base + p for p in PAGES]
    assert f"{site.base}/help/cards: HTTP 503 (Service Unavailable); kept the copy the last " \
        "crawl read" in kept.report.warnings
    assert f"{site.base}/help/cards/deep: timed out after 0.3 s; kept the copy the last " \
        "crawl read" in kept.report.warnings
    fresh, snapshot = _crawl(_site(source.url, timeout_s=0.3), tmp_path / "fresh")
    assert f"{site.base}/help/cards/deep" not in [p["url"] for p in snapshot["pages"]]
    assert f"{site.base}/help/cards/deep: timed out after 0.3 s; skipped" in \
        fresh.report.warnings


def test_private_addresses_are_refused_unless_the_site_allows_them(
        site: HelpSite, tmp_path: Path) -> None:
    (tmp_path / "site.json").write_text('{"kept": "as it was"}')
    port = site.base.rsplit(":", 1)[1]
    for url, why in ((f"{site.base}/help/", "127.0.0.1 is a loopback address"),
                     (f"http://localhost:{port}/help/", "localhost resolves to ")):
        with pytest.raises(SourceError) as info:
            crawl_site(_site(url, allow_private=False), cache=tmp_path / "cache.json",
                       snapshot=tmp_path / "site.json")
        assert str(info.value).startswith(f"{url}: could not be read: refused: "), info.value
        assert why in str(info.value) and "allow_private: true" in str(info.value)
    assert (tmp_path / "site.json").read_text() == '{"kept": "as it was"}'  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["site.json"]  # no temporary file left
    allowed = _site(f"{site.base}/help/", allow_private=False,
                    allow_networks=("127.0.0.0/8",), max_depth=0)
    assert _crawl(allowed, tmp_path)[1]["pages"]
    # every hop of a redirect is checked: here to a private address the site lists as a host
    hop = _site(f"{site.base}/help/", allow_networks=("127.0.0.1/32",), allow_private=False,
                hosts=("10.0.0.1",), max_depth=0)
    with pytest.raises(SourceError, match=r"redirects to http://10\.0\.0\.1/help/wiki, "
                       r"refused: 10\.0\.0\.1 is a private address"):
        crawl_site(dataclasses.replace(hop, url=f"{site.base}/help/to-intranet"),
                   cache=tmp_path / "c2.json", snapshot=tmp_path / "s2.json")
    policy = AddressPolicy()
    assert policy.refusal("10.1.2.3") == "10.1.2.3 is a private address"
    assert policy.refusal("169.254.169.254") == "169.254.169.254 is a link-local address"
    assert policy.refusal("::ffff:127.0.0.1") == "::ffff:127.0.0.1 is a loopback address"
    assert policy.refusal("fd00::1") == "fd00::1 is a private address"
    assert policy.refusal("93.184.215.14") is None


def test_sitemaps_are_parsed_safely() -> None:
    listed = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
              b'sitemap/0.9"><url><loc> https://a.test/x?a=1&amp;b=2 </loc></url></urlset>')
    assert parse_sitemap(listed).locs == ("https://a.test/x?a=1&b=2",)
    assert parse_sitemap(gzip.compress(listed)).locs == ("https://a.test/x?a=1&b=2",)
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;">]>'
              b"<urlset><url><loc>&b;</loc></url></urlset>")
    with pytest.raises(SitemapError, match="document type or entities"):
        parse_sitemap(laughs)
    with pytest.raises(SitemapError, match=r"more than 50,000,000 bytes"):
        parse_sitemap(gzip.compress(b" " * 50_000_001))
    with pytest.raises(SitemapError, match="not a sitemap"):
        parse_sitemap(b"<html><body>hello</body></html>")


def test_a_wrong_site_entry_is_named_with_its_place(make_bot: MakeBot) -> None:
    for entry, error in (
            ("{url: https://help.test/, max_pagez: 3}",
             "faq.sources[1].max_pagez: unknown key; valid keys are: allow_networks"),
            ("{url: ftp://help.test/}", "faq.sources[1].url: must be an absolute http://"),
            ('"ftp://help.test/"', "faq.sources[1]: only http:// and https:// addresses"),
            ("{url: https://help.test/, prefix: help}", "faq.sources[1].prefix: must start"),
            ("{url: https://help.test/, max_pages: 0}", "faq.sources[1].max_pages: must be")):
        root = make_bot(f"name: b\nfaq:\n  sources: [faq/main.yaml, {entry}]\n")
        with pytest.raises(ConfigError) as info:
            load_bot(root)
        assert str(info.value).startswith(f"{root}/bot.yaml:3: {error}"), info.value


BOT = """
name: site_bot
faq:
  sources:
    - url: {base}/help/sitemap.xml
      allow_private: true  # the test's server is on this machine
      delay_s: 0
      max_page_bytes: 1000000
  answer_threshold: 0.4
embedder: {{tuning_rounds: 0}}
answers: {{policy: threshold}}
fallback:
  message: Sorry, I do not know.
"""


async def test_a_bot_trained_from_a_site_answers_from_its_pages_and_retrains_incrementally(
        site: HelpSite, make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(textwrap.dedent(BOT).format(base=site.base), files={})
    assert main(["validate", str(root)]) == 0
    assert f"faq.sources[0] {site.base}/help/sitemap.xml: not read yet" in \
        capsys.readouterr().out
    assert main(["validate", str(root), "--crawl"]) == 0
    out = capsys.readouterr().out
    assert f"faq.sources[0] {site.base}/help/sitemap.xml: 6 web pages (read now), " in out
    assert f"warning: {site.base}/help/missing: HTTP 404 (not found); skipped" in out
    assert not (root / ".bot").exists()  # validate keeps nothing
    bot = load_bot(root)
    steps = {s.step: s for s in train(bot, progress=False)}
    crawled = steps[f"site {site.base}/help/sitemap.xml"]
    assert crawled.rebuilt and crawled.detail.startswith("6 pages: 8 read")
    assert len(crawled.warnings) == 5 and steps["faq index"].rebuilt
    site.requests.clear()
    steps = {s.step: s for s in train(bot, progress=False)}
    assert not steps[f"site {site.base}/help/sitemap.xml"].rebuilt
    assert not steps["faq index"].rebuilt
    assert {status for _, status in site.requests} <= {200, 301, 302, 304, 404}
    assert {path for path, status in site.requests if status == 200} == {
        "/robots.txt", "/help/sitemap.xml", "/help/returns", "/help/statement", "/help/huge"}
    site.fee = "7 pounds"
    steps = {s.step: s for s in train(bot, progress=False)}
    assert steps[f"site {site.base}/help/sitemap.xml"].detail.startswith("6 pages: 1 read")
    assert steps["faq index"].rebuilt
    assert main(["validate", str(root)]) == 0
    assert "6 web pages (as the last `bot train` read them)" in capsys.readouterr().out
    site.requests.clear()
    runtime = BotRuntime.load(load_bot(root))  # serving reads what training kept: no crawl
    try:
        reply = await runtime.dialogue.handle(
            UserMessage("u1", "How much does an international transfer cost?"))
    finally:
        await runtime.close()
    assert site.requests == []
    assert reply.kind == "faq" and "7 pounds" in reply.text, reply
    assert reply.citations[0].source == f"{site.base}/help/fees#transfers"
