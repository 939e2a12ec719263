"""Crawl a site for its pages: from a start page (links followed breadth first, level by
level, up to ``max_depth``) or from a sitemap (or sitemap index) and then the links of its
pages, within the site's limits and rules (:class:`~retrieval.sites.settings.SiteSource`,
:mod:`retrieval.sites.network`), robots.txt honoured (``urllib.robotparser``).

Incremental: each URL is requested with the ETag and Last-Modified of the copy the last
crawl kept (``retrieval.sites.store``); a page answered 304, or whose body hashes as before,
is not converted again. A page that fails is reported and skipped; one that fails for a
while (a time-out, HTTP 5xx) keeps the copy the last crawl read. The order pages are read
and kept in does not depend on the network's timing (each level is sorted as it was found),
so an unchanged site gives the same snapshot and leaves the index current.

Only ``bot train`` (and ``bot validate --crawl``) crawl; a served bot reads the snapshot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import re
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from retrieval.errors import SourceError
from retrieval.sites.network import (
    CONNECTIONS,
    Fetched,
    Fetcher,
    FetchFailed,
    TimeLimit,
    normal_url,
)
from retrieval.sites.page import PageError, read_page
from retrieval.sites.settings import SiteSource
from retrieval.sites.sitemap import TYPES as SITEMAP_TYPES
from retrieval.sites.sitemap import SitemapError, parse_sitemap
from retrieval.sites.store import (
    Entry,
    Report,
    load_cache,
    save_cache,
    site_digest,
    snapshot_pages,
    write_snapshot,
)

PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ROBOTS_BYTES = 500_000  # Google reads the first 500 KiB of a robots.txt
MAX_SITEMAPS = 100  # sitemaps read from a sitemap index (and its indexes, two levels down)
MAX_CRAWL_DELAY = 60.0
# links to files that are not pages: not requested at all
_NOT_PAGES = re.compile(r"\.(png|jpe?g|gif|svg|webp|avif|ico|bmp|tiff?|mp[34]|m4a|webm|ogg|wav|"
                        r"avi|mov|zip|gz|tgz|bz2|xz|rar|7z|exe|dmg|msi|apk|iso|css|js|mjs|json|"
                        r"woff2?|ttf|otf|eot|rss|atom)$", re.IGNORECASE)
T = TypeVar("T")


@dataclass(frozen=True)
class Crawl:
    """A crawl's outcome: the pages read, in order; the cache for the next crawl; what it did."""

    pages: list[Entry]
    cache: dict[str, Entry]
    report: Report


class _Robots:
    """Each host's robots.txt, read once per crawl through the same fetcher."""

    def __init__(self, fetcher: Fetcher, site: SiteSource, report: Report) -> None:
        self.fetcher, self.site, self.report = fetcher, site, report
        self._parsers: dict[str, asyncio.Task[RobotFileParser]] = {}
        self.failed: dict[str, str] = {}  # origin: why its robots.txt could not be read

    async def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            self._parsers[origin] = asyncio.ensure_future(self._read(origin))
        parser = await self._parsers[origin]
        return parser.can_fetch(self.site.user_agent, url)

    async def _read(self, origin: str) -> RobotFileParser:
        parser = RobotFileParser(f"{origin}/robots.txt")
        host = urlsplit(origin).hostname

        async def same_host(url: str) -> str | None:
            return None if urlsplit(url).hostname == host else "another host"

        try:
            got = await self.fetcher.get(f"{origin}/robots.txt", kinds=None,
                                         max_bytes=ROBOTS_BYTES, scope=same_host)
        except FetchFailed as exc:  # as RobotFileParser.read: 401/403 none, other 4xx all
            if exc.status in (401, 403) or exc.status is None or exc.status >= 500:
                parser.parse(["User-agent: *", "Disallow: /"])
                self.failed[origin] = exc.reason
                self.report.warnings.append(f"{origin}/robots.txt: {exc.reason}; nothing is "
                                            "read from this host")
            else:
                parser.parse([])
            return parser
        parser.parse(got.body.decode("utf-8", "replace").splitlines())
        delay = parser.crawl_delay(self.site.user_agent)
        if delay:
            self.fetcher.slower(min(float(delay), MAX_CRAWL_DELAY))
        return parser


class Crawler:
    """One crawl of ``site`` (run :meth:`run` once), with the cache the last one left."""

    def __init__(self, site: SiteSource, cache: dict[str, Entry], *,
                 progress: bool = False) -> None:
        self.site, self.cache, self.progress = site, cache, progress
        self.report = Report()
        self.visited: dict[str, Entry | str] = {}  # URL: what was read, or why not
        self.kept: dict[str, Entry] = {}  # the next crawl's cache
        self.left = site.max_pages
        self.queued: list[str] = []
        self.over: set[str] = set()  # pages found beyond max_pages
        self.disallowed: set[str] = set()

    async def run(self) -> Crawl:
        from tqdm.auto import tqdm  # loaded when a site is crawled

        loop = asyncio.get_running_loop()
        started = loop.time()
        self.bar = tqdm(total=0, desc=f"crawl {self.site.host}", unit="page",
                        disable=not self.progress)
        try:
            async with Fetcher(self.site, deadline=started + self.site.max_seconds) as fetcher:
                self.fetcher = fetcher
                self.robots = _Robots(fetcher, self.site, self.report)
                try:
                    order = await self._crawl()
                except TimeLimit:
                    order = [url for url in self.queued if url in self.visited]
                    unread = sum(1 for url in self.queued if url not in self.visited)
                    self._warn(f"max_seconds ({self.site.max_seconds:g} s) reached: {unread} "
                               "pages found were not read")
        finally:
            self.bar.close()
        if self.over:
            self._warn(f"max_pages ({self.site.max_pages}) reached: {len(self.over)} more "
                       "pages found were not read")
        self.report.disallowed = len(self.disallowed)
        self.report.seconds = round(loop.time() - started, 3)
        pages = [e for url in order if isinstance(e := self.visited.get(url), Entry)
                 and e.kind == "page"]
        return Crawl(pages, self.kept, self.report)

    async def _crawl(self) -> list[str]:
        """Read the site level by level; the URLs visited, in order."""
        start = normal_url(self.site.url)
        assert start is not None  # SiteSource checks it is an http(s) URL
        if not await self.robots.allows(start):
            parts = urlsplit(start)
            failed = self.robots.failed.get(f"{parts.scheme}://{parts.netloc}")
            if failed:  # the host is refused, or its robots.txt is unreadable
                raise SourceError(f"could not be read: {failed}" if failed.startswith(
                    "refused") else f"could not be read: robots.txt: {failed}",
                    file=self.site.url)
            raise SourceError(f"robots.txt does not let {self.site.user_agent!r} read it",
                              file=self.site.url)
        self._queue([start])
        first = self.visited[start] = await self._visit(start, PAGE_TYPES | SITEMAP_TYPES)
        if isinstance(first, str):
            raise SourceError(f"could not be read: {first}", file=self.site.url)
        order = [start]
        if first.kind != "page":  # a sitemap, which is not one of the pages
            self.left += 1
        level = [start] if first.kind == "page" else await self._sitemap_pages(start, first)
        for depth in range(self.site.max_depth + 1):
            await self._visit_all(level, order)
            if depth == self.site.max_depth:
                break
            found: list[str] = []
            for url in level:
                entry = self.visited.get(url)
                if isinstance(entry, Entry) and entry.kind == "page" and entry.follow:
                    found.extend(entry.links)
            level = await self._in_scope(found)
            if not level:
                break
        return order

    def _queue(self, urls: Iterable[str]) -> list[str]:
        """The URLs not seen before, within what is left of ``max_pages``."""
        taken = []
        for url in urls:
            if url in self.visited or url in taken:
                continue
            if self.left <= 0:
                self.over.add(url)
                continue
            self.left -= 1
            taken.append(url)
        self.queued.extend(taken)
        self.bar.total += len(taken)
        self.bar.refresh()
        return taken

    async def _in_scope(self, links: Iterable[str], *, report: bool = False) -> list[str]:
        """The links that may be read and were not, in order (``report``: warn about those
        outside the site, as for a sitemap's)."""
        wanted, outside = [], 0
        for link in dict.fromkeys(links):
            if link in self.visited or _NOT_PAGES.search(urlsplit(link).path):
                continue
            why = await self.refusal(link)
            if why is None:
                wanted.append(link)
            elif why.startswith("disallowed"):
                self.disallowed.add(link)
            else:
                outside += 1
        if report and outside:
            where = urlsplit(self.site.url)._replace(path=self.site.scope, query="").geturl()
            self._warn(f"{outside} sitemap address{'es' if outside > 1 else ''} outside "
                       f"{where} {'were' if outside > 1 else 'was'} not read")
        return self._queue(wanted)

    async def refusal(self, url: str, *, prefix: bool = True) -> str | None:
        """Why ``url`` may not be read (another host, outside the path prefix, robots.txt),
        or None; redirects are checked with it too."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host != self.site.host and host not in self.site.hosts:
            return f"outside the site (another host than {self.site.host})"
        if prefix and not parts.path.startswith(self.site.scope):
            return f"outside the site's path prefix {self.site.scope}"
        if not await self.robots.allows(url):
            return "disallowed by robots.txt"
        return None

    async def _visit_all(self, level: list[str], order: list[str]) -> None:
        gate = asyncio.Semaphore(CONNECTIONS)
        late: list[str] = []

        async def one(url: str) -> None:
            async with gate:
                try:
                    self.visited[url] = await self._visit(url, PAGE_TYPES)
                except TimeLimit:
                    late.append(url)

        await asyncio.gather(*(one(u) for u in level if u not in self.visited))
        order.extend(u for u in level if u in self.visited and u not in order)
        if late:
            raise TimeLimit

    async def _visit(self, url: str, kinds: frozenset[str]) -> Entry | str:
        """Read ``url`` (conditionally, when the cache has it): its entry, or why it failed."""
        cached = self.cache.get(url)
        try:
            got = await self.fetcher.get(
                url, kinds=kinds, max_bytes=self.site.max_page_bytes,
                validators=(cached.etag, cached.modified) if cached else (None, None),
                scope=self.refusal)
        except FetchFailed as exc:
            if exc.transient and cached is not None:
                self.report.kept += 1
                self._warn(f"{url}: {exc.reason}; kept the copy the last crawl read")
                return self._keep(url, cached)
            self.report.failed += 1
            self._warn(f"{url}: {exc.reason}; skipped")
            return exc.reason
        finally:
            self.bar.update(1)
            self.bar.set_postfix_str(urlsplit(url).path[-40:], refresh=False)
        body = hashlib.sha256(got.body).hexdigest()
        if cached is not None and (got.status == 304 or (cached.body, cached.url) == (
                body, got.url)):
            if got.status == 304:
                self.report.not_modified += 1
            else:
                self.report.unchanged += 1
            validators = (got.etag or cached.etag, got.last_modified or cached.modified)
            return self._keep(url, cached if validators == (cached.etag, cached.modified)
                              else replace(cached, etag=validators[0], modified=validators[1]))
        if got.status == 304:  # a 304 to a request that was not conditional on a copy
            self.report.failed += 1
            self._warn(f"{url}: answered 304 Not Modified to a plain request; skipped")
            return "answered 304 to a plain request"
        entry = await self._read(got, body)
        if isinstance(entry, str):
            self.report.failed += 1
            self._warn(f"{url}: {entry}; skipped")
            return entry
        self.report.converted += 1
        return self._keep(url, entry)

    async def _read(self, got: Fetched, body: str) -> Entry | str:
        """A fetched page or sitemap read (off the event loop: parsing takes a while)."""
        if got.content_type in PAGE_TYPES:
            try:
                page = await asyncio.to_thread(read_page, got.body, url=got.url,
                                               charset=got.charset)
            except PageError as exc:
                return str(exc)
            return Entry("page", got.url, got.etag, got.last_modified, body, page.title,
                         page.sections, page.links, page.index, page.follow)
        try:
            sitemap = await asyncio.to_thread(parse_sitemap, got.body)
        except SitemapError as exc:
            return str(exc)
        return Entry("index" if sitemap.index else "sitemap", got.url, got.etag,
                     got.last_modified, body, links=sitemap.locs)

    async def _sitemap_pages(self, url: str, sitemap: Entry) -> list[str]:
        """The pages a sitemap lists (a sitemap index: its sitemaps', two levels down)."""
        pages: list[str] = []
        todo, read = [(sitemap, 0)], {url}
        while todo:
            entry, depth = todo.pop(0)
            if entry.kind == "sitemap":
                pages.extend(link for loc in entry.links if (link := normal_url(loc)))
                continue
            for loc in entry.links:
                child = normal_url(loc)
                if child is None or child in read:
                    continue
                if depth >= 2 or len(read) >= MAX_SITEMAPS:
                    self._warn(f"{child}: more than {MAX_SITEMAPS} sitemaps, or nested more "
                               "than two levels down; not read")
                    continue
                read.add(child)
                self.bar.total += 1
                why = await self.refusal(child, prefix=False)
                found = f"{child}: {why}; skipped" if why else await self._visit(
                    child, SITEMAP_TYPES)
                if isinstance(found, Entry) and found.kind != "page":
                    todo.append((found, depth + 1))
                elif isinstance(found, str) and why:
                    self._warn(found)
        return await self._in_scope(pages, report=True)

    def _keep(self, url: str, entry: Entry) -> Entry:
        self.kept[url] = entry
        return entry

    def _warn(self, warning: str) -> None:
        self.report.warnings.append(warning)


@dataclass(frozen=True)
class SiteRead:
    """What :func:`crawl_site` did: its report, and whether the snapshot changed."""

    report: Report
    changed: bool


def crawl_site(site: SiteSource, *, cache: Path, snapshot: Path, progress: bool = False,
               keep_cache: bool = True, fresh: bool = False,
               since: Path | None = None) -> SiteRead:
    """Crawl ``site`` with the cache in ``cache`` (``fresh``: without it; updated, unless
    not ``keep_cache``) and write the pages to index to ``snapshot``; it changed if its
    pages differ from those of ``since`` (default: ``snapshot`` as it was). A site none of
    whose pages can be read is a :class:`SourceError` naming it (nothing is written then)."""
    before = site_digest(snapshot if since is None else since)
    started = time.perf_counter()
    kept = {} if fresh else load_cache(cache)
    crawl = run_sync(Crawler(site, kept, progress=progress).run())
    same = crawl.cache.keys() == kept.keys() and all(
        entry is kept[url] for url, entry in crawl.cache.items())
    pages, merged = snapshot_pages(crawl.pages, site.scope)
    report = replace(crawl.report, pages=len(pages), merged=merged,
                     seconds=round(time.perf_counter() - started, 3))
    if keep_cache and not same:  # (an unchanged site's cache is left as it is)
        save_cache(cache, site.url, crawl.cache)
    if not pages:
        problems = "; ".join(report.warnings[:3]) or "its pages have no text"
        raise SourceError(f"no page of the site could be read ({problems})", file=site.url)
    write_snapshot(snapshot, site.url, pages, report)
    return SiteRead(report, site_digest(snapshot) != before)


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end: on this thread, or on its own thread when this one runs an
    event loop already (``bot train`` called from async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()
