"""A fetched web page: its text through the HTML converter (``retrieval.converters.html``,
so navigation, footers and banners are dropped as they are for files), and the links the
crawler may follow (read with the standard library's HTML parser, before the converter drops
the navigation they are mostly in)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from retrieval.converters.base import Section, looks_binary, one_line
from retrieval.converters.html import read_html
from retrieval.sites.network import normal_url


class PageError(Exception):
    """A page that is not readable HTML."""


@dataclass(frozen=True)
class Page:
    title: str
    sections: tuple[Section, ...]
    links: tuple[str, ...]  # absolute, normalised, in order, once each
    index: bool = True  # False: ``<meta name="robots" content="noindex">``
    follow: bool = True  # False: ``nofollow``, its links are not followed


class _Links(HTMLParser):
    """Collects ``<a href>`` (not ``rel="nofollow"`` or ``download``), ``<base href>`` and
    the robots ``<meta>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base = ""
        self.robots = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "a" and found.get("href") and "download" not in found \
                and "nofollow" not in found.get("rel", "").lower().split():
            self.hrefs.append(found["href"])
        elif tag == "base" and found.get("href") and not self.base:
            self.base = found["href"]
        elif tag == "meta" and found.get("name", "").lower() in ("robots", "supportbot"):
            self.robots += " " + found.get("content", "").lower()


def read_page(body: bytes, *, url: str, charset: str | None = None) -> Page:
    """Read a page fetched from ``url`` (its final address, after redirects): its text,
    the links it has (relative ones resolved against ``<base>`` or ``url``)."""
    if looks_binary(body):
        raise PageError("holds binary data, not HTML")
    text = decode(body, charset)
    scanner = _Links()
    scanner.feed(text)
    scanner.close()
    base = (normal_url(scanner.base, url) if scanner.base else None) or url
    links = dict.fromkeys(link for href in scanner.hrefs if (link := normal_url(href, base)))
    title, sections = read_html(text)
    robots = set(re.findall(r"[a-z]+", scanner.robots))
    return Page(title or url_title(url), sections, tuple(links),
                index=not robots & {"noindex", "none"}, follow=not robots & {"nofollow", "none"})


def decode(body: bytes, charset: str | None) -> str:
    """The page's text: in the HTTP header's charset, else its own declaration (a BOM,
    ``<meta charset>``), else UTF-8, else what Beautiful Soup's detector finds."""
    from bs4 import UnicodeDammit  # loaded when a page is read, not at start-up

    dammit = UnicodeDammit(body, [charset] if charset else [], is_html=True)
    return dammit.unicode_markup or body.decode("utf-8", "replace")


def url_title(url: str) -> str:
    """A title for a page that names none: its last path segment ("refund-policy": "refund
    policy"), else its host."""
    parts = urlsplit(url)
    last = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    last = re.sub(r"\.(html?|php|aspx?)$", "", last, flags=re.IGNORECASE)
    return one_line(re.sub(r"[-_.+]+", " ", last)) or parts.hostname or url
