"""Sitemaps (``<urlset>``) and sitemap indexes (``<sitemapindex>``): the ``<loc>`` they list.

Parsed here with the standard library's expat rather than by a sitemap library
(ultimate-sitemap-parser fetches the sitemaps itself, so the crawl's rules — address
checks, robots.txt, size, time and rate limits — would not apply to those requests). XML is
read defensively, as defusedxml does: a document type declaration (and so any entity,
internal or external: the "billion laughs" and external-entity attacks) is refused, and the
input is capped in size before parsing (a gzipped sitemap after inflating too).
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass
from xml.parsers import expat

MAX_SITEMAP_BYTES = 50_000_000  # the sitemaps protocol's own limit, uncompressed
TYPES = frozenset({"application/xml", "text/xml", "application/gzip", "application/x-gzip",
                   "application/octet-stream"})


class SitemapError(Exception):
    """Not a sitemap this reader accepts; the message says why."""


@dataclass(frozen=True)
class Sitemap:
    index: bool  # a sitemap index: ``locs`` are sitemaps, not pages
    locs: tuple[str, ...]


def inflate(data: bytes, limit: int = MAX_SITEMAP_BYTES) -> bytes:
    """``data``, un-gzipped when it is gzip; more than ``limit`` bytes is an error."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise SitemapError(f"is not a readable gzip file ({exc})") from exc
    if len(data) > limit:
        raise SitemapError(f"is more than {limit:,} bytes")
    return data


def parse_sitemap(data: bytes) -> Sitemap:
    """The locations a sitemap or sitemap index lists, in order."""
    data = inflate(data)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root: list[str] = []
    stack: list[str] = []
    text: list[str] = []
    locs: list[str] = []

    def refuse(*_args: object) -> None:
        raise SitemapError("declares a document type or entities (refused, as defusedxml "
                           "does: a sitemap needs neither)")

    def start(name: str, _attributes: dict[str, str]) -> None:
        stack.append(name.rsplit(" ", 1)[-1])
        if not root:
            root.append(stack[0])
        text.clear()

    def end(_name: str) -> None:
        if stack[-1] == "loc" and len(stack) >= 2 and stack[-2] in ("url", "sitemap"):
            loc = "".join(text).strip()
            if loc:
                locs.append(loc)
        stack.pop()

    def characters(data: str) -> None:
        if stack and stack[-1] == "loc":
            text.append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise SitemapError(f"is not well-formed XML (line {exc.lineno}: "
                           f"{expat.ErrorString(exc.code)})") from exc
    if not root or root[0] not in ("urlset", "sitemapindex"):
        raise SitemapError(f"is XML but not a sitemap (its root is <{root[0] if root else ''}>,"
                           " not <urlset> or <sitemapindex>)")
    return Sitemap(root[0] == "sitemapindex", tuple(locs))
