"""Measure reading documents and sites as FAQ sources (issue 31; docs/documents.md).

    .venv/bin/python -m benchmarks.documents [--pages 240]
        (writes the "crawl" part of benchmarks/results/documents.json)

``crawl``: a help center generated here (a home page, category pages and ``--pages``
articles of about 22 KB each: inline style and script, a menu, a footer of links, and an
article of headings, paragraphs, lists and a table; all answering conditional requests by
ETag), served by a local aiohttp server in a process of its own, crawled from its sitemap
by ``retrieval.sites.crawl.crawl_site`` as `bot train` does: ``seconds`` for the first
crawl (an empty cache: every page fetched and converted), ``resync_seconds`` for the next
one with nothing changed (every page asked for conditionally, answered 304, nothing
converted), ``pages`` the pages kept. The polite delay between requests (``delay_s``,
0.5 s by default) is set to 0 here, so the figures measure the crawler's own work rather
than the wait it chooses. Other parts of the file (``extraction``, ``answers``) are kept
as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from retrieval.sites.crawl import crawl_site
from retrieval.sites.settings import SiteSource
from tests.retrieval.help_site import serve

RESULTS = Path(__file__).parent / "results" / "documents.json"
CATEGORIES = ("Cards", "Payments", "Transfers", "Savings", "Loans", "Security", "Account",
              "Business")
WORDS = ["account", "card", "payment", "transfer", "limit", "fee", "statement", "balance",
         "savings", "interest", "loan", "security", "password", "device", "app", "branch",
         "mortgage", "overdraft", "currency", "rate", "direct", "debit", "standing", "order",
         "receipt", "refund", "dispute", "freeze", "replace", "verify"]
# what a real help center's page carries besides its article (inline style and script, a
# menu of every category's articles, a footer of links): about 15 KB of the page
STYLE = "<style>" + "".join(f".c{n} {{ margin: {n}px; color: #{n:03x}; }}" for n in range(80)) \
    + "</style>"
SCRIPT = "<script>" + "".join(f"window.t{n} = function () {{ return {n}; }};"
                              for n in range(120)) + "</script>"
FOOTER = "<footer>" + " ".join(f'<a href="/legal/{n}">Legal page {n}</a>' for n in range(30)) \
    + " Example bank plc. Cookies. Terms.</footer>"


def _sentence(n: int) -> str:
    words = [WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(9 + n % 6)]
    return " ".join(words).capitalize() + "."


def _chrome(title: str, body: str, per: int) -> str:
    """``body`` in a page as a help center serves it (``per``: articles in a category)."""
    nav = "".join(f'<li><a href="/help/{c.lower()}/">{c}</a><ul>' + "".join(
        f'<li><a href="/help/{c.lower()}/article-{i * per + k}">Popular {k}</a>'
        "</li>" for k in range(6)) + "</ul></li>" for i, c in enumerate(CATEGORIES))
    return (f"<!doctype html><html><head><title>{title} | Example bank help</title>"
            f'<meta charset="utf-8">{STYLE}{SCRIPT}</head><body><header><a href="/">Example '
            f"bank</a></header><nav><ul>{nav}</ul></nav><main>{body}</main><aside>Related: "
            f"<ul>{nav}</ul></aside>{FOOTER}</body></html>")


def help_center(articles: int) -> dict[str, str]:
    """Path: HTML of a generated help center with ``articles`` articles (at least 48)."""
    site: dict[str, str] = {}
    per = -(-articles // len(CATEGORIES))  # articles in a category
    for c, category in enumerate(CATEGORIES):
        links = []
        for a in range(per):
            n = c * per + a
            if n >= articles:
                break
            path = f"/help/{category.lower()}/article-{n}"
            links.append(f'<li><a href="{path}">Question {n} about {category}</a></li>')
            sections = "".join(
                f'<h2 id="s{s}">Part {s} of question {n}</h2>'
                + "".join(f"<p>{_sentence(n + s + p)} {_sentence(n * s + p)} "
                          f"{_sentence(n + 3 * p)}</p>" for p in range(4))
                + f"<ul><li>{_sentence(n + s)}</li><li>{_sentence(n + 2 * s)}</li></ul>"
                for s in range(1, 5))
            table = ("<table><tr><th>Plan</th><th>Fee</th></tr>" + "".join(
                f"<tr><td>Plan {r}</td><td>{r + n % 5} pounds</td></tr>" for r in range(4))
                + "</table>")
            site[path] = _chrome(f"Question {n}", f"<h1>Question {n} about {category}</h1>"
                                 f"{sections}{table}", per)
        site[f"/help/{category.lower()}/"] = _chrome(
            category, f"<h1>{category}</h1><ul>{''.join(links)}</ul>", per)
    site["/help/"] = _chrome("Help", "<h1>Help</h1>" + "".join(
        f'<p><a href="/help/{c.lower()}/">{c}</a></p>' for c in CATEGORIES), per)
    return site


def app(site: dict[str, str], base: list[str]) -> web.Application:
    tags = {path: '"' + hashlib.sha256(html.encode()).hexdigest()[:16] + '"'
            for path, html in site.items()}

    async def page(request: web.Request) -> web.Response:
        path = request.path
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        if path == "/help/sitemap.xml":
            urls = "".join(f"<url><loc>{base[0]}{p}</loc></url>" for p in site)
            return web.Response(text='<?xml version="1.0"?><urlset xmlns="http://www.'
                                f'sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
                                content_type="application/xml")
        if path not in site:
            raise web.HTTPNotFound
        if request.headers.get("If-None-Match") == tags[path]:
            return web.Response(status=304, headers={"ETag": tags[path]})
        return web.Response(text=site[path], content_type="text/html",
                            headers={"ETag": tags[path]})

    application = web.Application()
    application.router.add_get("/{tail:.*}", page)
    return application


def _serve(articles: int, started: multiprocessing.Queue) -> None:
    """Serve the help center until terminated (in a process of its own, so that the
    server's work is not counted as the crawler's, as it is not with a real site)."""
    base: list[str] = []
    with serve(app(help_center(articles), base)) as url:
        base.append(url)
        started.put(url)
        threading.Event().wait()


def measure_crawl(articles: int) -> dict[str, object]:
    site = help_center(articles)
    started: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(articles, started), daemon=True)
    server.start()
    try:
        url = started.get(timeout=60)
        with tempfile.TemporaryDirectory() as work:
            source = SiteSource(url=f"{url}/help/sitemap.xml", allow_private=True,
                                delay_s=0.0, max_pages=len(site) + 10)
            folder = Path(work)
            first = crawl_site(source, cache=folder / "cache.json",
                               snapshot=folder / "site.json")
            again = crawl_site(source, cache=folder / "cache.json",
                               snapshot=folder / "site.json")
    finally:
        server.terminate()
        server.join(10)
    assert not again.changed and again.report.converted == 0, again.report
    kb = sum(len(html.encode()) for html in site.values()) / len(site) / 1000
    return {"pages": first.report.pages, "seconds": first.report.seconds,
            "resync_seconds": again.report.seconds,
            "resync_share": round(again.report.seconds / first.report.seconds, 3),
            "first": first.report.line(), "resync": again.report.line(),
            "site": f"{len(site)} generated pages of {kb:.1f} KB on average, from a sitemap, "
                    "local aiohttp server in another process, delay_s 0",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=240, help="articles in the site")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    crawl = measure_crawl(args.pages)
    crawl["load_average_before"] = load_before
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["crawl"] = crawl
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(crawl, indent=2))


if __name__ == "__main__":
    main()
