"""A website as a FAQ source: one ``faq.sources`` entry that names a URL, as a plain string
(``https://help.example.com/``, every limit at its default) or a mapping with its limits
(``{url: https://help.example.com/, max_pages: 500}``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from foundation.checks import between, check, http_url, positive
from foundation.settings import Where, build

USER_AGENT = "supportbot-crawler/1.0"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _networks(value: Any) -> str | None:
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            return f"{network!r} is not a network (write 10.0.0.0/8 or 192.168.1.20)"
    return None


def _prefix(value: Any) -> str | None:
    return None if value is None or value.startswith("/") else "must start with '/'"


@dataclass(frozen=True)
class SiteSource:
    """Where a crawl starts (a page, or a ``sitemap.xml`` or sitemap index) and its limits.

    Links are followed, and sitemap entries read, only on the start URL's host (and
    ``hosts``) under ``prefix`` (default: the start URL's folder, ``/help/`` for
    ``https://example.com/help/start``), up to ``max_depth`` links away from the start page
    or a sitemap's pages (0: only those), at most ``max_pages`` pages of at most
    ``max_page_bytes`` each, ``max_seconds`` in all, starting a request at most every
    ``delay_s`` seconds (or robots.txt's ``Crawl-delay``, when longer). Addresses in
    private, loopback or link-local networks are refused unless ``allow_private`` is set
    or they are in ``allow_networks``.
    """

    url: str = check(http_url)
    max_pages: int = check(between(1, 100_000), default=200)
    max_depth: int = check(between(0, 100), default=3)
    max_page_bytes: int = check(positive, default=5_000_000)
    max_seconds: float = check(positive, default=600.0)
    delay_s: float = check(between(0.0, 60.0), default=0.5)
    timeout_s: float = check(positive, default=20.0)
    prefix: str | None = check(_prefix, default=None)
    hosts: tuple[str, ...] = ()
    allow_private: bool = False
    allow_networks: tuple[str, ...] = check(_networks, default=())
    user_agent: str = USER_AGENT

    def __str__(self) -> str:
        return self.url

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def scope(self) -> str:
        """The path prefix pages are read under: ``prefix``, else the start URL's folder."""
        if self.prefix is not None:
            return self.prefix
        path = urlsplit(self.url).path or "/"
        return path[:path.rindex("/") + 1]

    @property
    def key(self) -> str:
        """A stable file name for what is kept of this site: ``help-example-com-1a2b3c4d``."""
        words = re.findall(r"[a-z0-9]+", f"{self.host} {urlsplit(self.url).path}".lower())
        return "-".join([*words[:6], hashlib.sha256(self.url.encode()).hexdigest()[:8]])


def site_of(entry: str | SiteSource) -> SiteSource | None:
    """The site a ``faq.sources`` entry names (a URL string gets every default), or None
    for a file, glob or folder."""
    if isinstance(entry, SiteSource):
        return entry
    return SiteSource(url=entry.strip()) if is_url(entry) else None


def is_url(entry: str) -> bool:
    """Whether a ``faq.sources`` string names an address (``scheme://...``), not a file."""
    return bool(_SCHEME.match(entry.strip()))


def check_site_entries(faq: Any, where: Where) -> None:
    """Check the URL entries of a ``faq`` section as written in YAML (``where``: the
    section), so that a wrong one is named with its place and its own reason rather than
    "must be a string or a mapping": a mapping must be a valid :class:`SiteSource`, a
    string with a scheme an http(s) URL with a host."""
    if not isinstance(faq, dict):
        return
    for key in ("sources", "agent_sources"):
        entries = faq.get(key)
        if not isinstance(entries, list):
            continue
        listed = where.key(faq, key)
        for i, entry in enumerate(entries):
            place = listed.item(entries, i)
            if isinstance(entry, dict):
                build(SiteSource, entry, place)
            elif isinstance(entry, str) and is_url(entry) and http_url(entry.strip()):
                raise place.error("only http:// and https:// addresses can be read, with a "
                                  f"host: {entry!r}")
