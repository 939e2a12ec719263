"""A help center served by a real local aiohttp server (on its own thread, so that code
that crawls it synchronously, as `bot train` does, may run on the test's thread).

It has what real sites have: a sitemap, a robots.txt disallowing a folder, a redirect, a
redirect loop, a 404, a huge page, a download that is not HTML, a page outside the help
folder, a page at two addresses, pages answering conditional requests by ETag or by
Last-Modified (and one by neither), and pages whose text the test may change.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

NAV = ('<nav><a href="/help/">Help home</a> <a href="/help/cards">Cards</a> '
       '<a href="/help/fees">Fees</a> <a href="/help/old-returns">Returns</a></nav>')
FOOTER = "<footer>FOOTER-TEXT Acme Bank plc, registered in England</footer>"
LAST_MODIFIED = "Wed, 21 Oct 2025 07:28:00 GMT"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><title>{title} | Acme help</title></head><body>"
            f"<header>SITE-HEADER</header>{NAV}<main>{body}</main>{FOOTER}</body></html>")


HOME = page("Help centre", """<h1>Help centre</h1><p>Answers to common questions.</p><ul>
<li><a href="cards">Cards</a></li><li><a href="/help/fees#transfers">Fees</a></li>
<li><a href="/help/old-returns">Returns</a></li><li><a href="/help/missing">Old page</a></li>
<li><a href="/help/huge">Everything</a></li><li><a href="/help/statement">Statement</a></li>
<li><a href="/help/private/staff">Staff only</a></li><li><a href="/blog/news">News</a></li>
<li><a href="/help/loop-a">Loop</a></li><li><a href="/help/cards-copy">Cards (copy)</a></li>
<li><a href="/help/logo.png">Logo</a></li><li><a href="mailto:help@acme.test">Mail</a></li>
</ul>""")
CARDS = page("Cards", """<h1>Cards</h1><section id="lost-card"><h2>Lost card</h2>
<p>Freeze a lost card in the app straight away, then order a replacement card.</p></section>
<h2 id="new-card">New card</h2><p>A replacement card arrives within five working days.</p>
<p><a href="/help/cards/deep">More about cards</a></p>""")
FEES = """<h1>Fees</h1><h2 id="transfers">International transfers</h2>
<p>An international transfer costs {fee}, and arrives in one to three working days.</p>
<h2 id="cash">Cash machines</h2><p>Cash withdrawals abroad are free up to 200 pounds.</p>"""
RETURNS = page("Returns", "<h1>Returns</h1><p>Send goods back within 30 days for a refund.</p>")
DEEP = page("Card designs", "<h1>Card designs</h1><p>Choose a card design in the app.</p>"
            '<p><a href="/help/cards/deeper">Even more</a></p>')
DEEPER = page("Card limits", "<h1>Card limits</h1><p>Your daily card limit is 500 pounds.</p>")
PRIVATE = page("Staff", "<h1>Staff</h1><p>SECRET-STAFF-TEXT</p>")
NEWS = page("News", "<h1>News</h1><p>BLOG-TEXT</p>")


@dataclass
class HelpSite:
    """The site's state: the fee its fees page states (change it to change the page), the
    paths that answer 503 (``broken``) or take a second (``slow``), and every request it
    answered, as (path, status)."""

    base: str = ""
    fee: str = "5 pounds"
    huge_bytes: int = 3_000_000
    broken: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)
    requests: list[tuple[str, int]] = field(default_factory=list)

    def sitemap(self) -> str:
        pages = ["/help/", "/help/cards", "/help/fees", "/help/old-returns", "/help/missing",
                 "/help/statement", "/help/private/staff", "/blog/news", "/help/cards-copy"]
        urls = "".join(f"<url><loc>{self.base}{p}</loc></url>" for p in pages)
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>')

    def statuses(self, path: str) -> list[int]:
        return [status for p, status in self.requests if p == path]

    def app(self) -> web.Application:
        app = web.Application()
        app.middlewares.append(self._log)
        routes = {
            "/robots.txt": lambda r: web.Response(
                text="User-agent: *\nDisallow: /help/private/\n"),
            "/help/": lambda r: _etagged(r, HOME),
            "/help/cards": lambda r: _etagged(r, CARDS),
            "/help/cards-copy": lambda r: _etagged(r, CARDS),
            "/help/cards/deep": lambda r: _etagged(r, DEEP),
            "/help/cards/deeper": lambda r: _etagged(r, DEEPER),
            "/help/fees": self._fees,
            "/help/old-returns": lambda r: web.HTTPMovedPermanently("/help/returns"),
            "/help/returns": lambda r: web.Response(text=RETURNS, content_type="text/html"),
            "/help/loop-a": lambda r: web.HTTPFound("/help/loop-b"),
            "/help/loop-b": lambda r: web.HTTPFound("/help/loop-a"),
            "/help/to-intranet": lambda r: web.HTTPFound("http://10.0.0.1/help/wiki"),
            "/help/statement": lambda r: web.Response(body=b"%PDF-1.4 not a page",
                                                      content_type="application/pdf"),
            "/help/private/staff": lambda r: _etagged(r, PRIVATE),
            "/blog/news": lambda r: _etagged(r, NEWS),
            "/help/sitemap.xml": lambda r: web.Response(text=self.sitemap(),
                                                        content_type="application/xml"),
            "/sitemap-index.xml": lambda r: web.Response(
                text='<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/'
                     f'schemas/sitemap/0.9"><sitemap><loc>{self.base}/help/sitemap.xml</loc>'
                     "</sitemap></sitemapindex>", content_type="text/xml"),
            "/help/huge": self._huge,
        }
        for path, handler in routes.items():
            app.router.add_get(path, _async(handler))
        return app

    @web.middleware
    async def _log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in self.slow:
            await asyncio.sleep(1.0)
        try:
            if request.path in self.broken:
                raise web.HTTPServiceUnavailable
            response = await handler(request)
        except web.HTTPException as exc:
            self.requests.append((request.path, exc.status))
            raise
        self.requests.append((request.path, response.status))
        return response

    async def _fees(self, request: web.Request) -> web.StreamResponse:
        """Conditional by Last-Modified only (changing the fee makes it newer)."""
        modified = LAST_MODIFIED if self.fee == "5 pounds" else "Thu, 22 Oct 2025 07:28:00 GMT"
        if request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304)
        return web.Response(text=page("Fees", FEES.format(fee=self.fee)),
                            content_type="text/html", headers={"Last-Modified": modified})

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """Streamed without a Content-Length: only reading it shows how big it is."""
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        block = b"<p>" + b"lorem ipsum " * 8000 + b"</p>"
        try:
            for _ in range(self.huge_bytes // len(block) + 1):
                await response.write(block)
        except ConnectionError:
            pass  # the crawler stopped reading: expected
        return response


def _etagged(request: web.Request, html: str) -> web.Response:
    tag = '"' + hashlib.sha256(html.encode()).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == tag:
        return web.Response(status=304, headers={"ETag": tag})
    return web.Response(text=html, content_type="text/html", headers={"ETag": tag})


def _async(handler: object) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        result = handler(request)  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.HTTPException):
            raise result
        return result

    return run


@contextmanager
def serve(app: web.Application, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` on a free port of ``host`` from a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    started = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port.append(runner.addresses[0][1])
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    started.wait(10)
    try:
        yield f"http://{host}:{port[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def help_site() -> Iterator[HelpSite]:
    site = HelpSite()
    with serve(site.app()) as base:
        site.base = base
        yield site
