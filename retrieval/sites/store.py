"""What a crawl keeps: the cache that makes the next crawl incremental, and the site's
snapshot that the FAQ index is built from.

- The **cache** (``.bot/crawl/<site>.json``, beside the versions): for every URL read, its
  ETag, Last-Modified and body hash (the next crawl sends a conditional request, and a page
  whose body is unchanged is not converted again), and what was read from it (title,
  sections, links).
- The **snapshot** (``sites/<site>.json`` in the trained artefacts' folder, so that each
  version keeps the pages it was trained from): the pages to index, duplicates (the same
  title and text at two addresses) merged, each with the name its passages' ids start
  with; the digest of its pages, which is the index fingerprint's, so an unchanged site
  leaves the index current; and the crawl's report (counts and warnings), which is not.

Both are written whole to a temporary file and renamed into place: a failed or interrupted
crawl leaves the previous ones as they were.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from retrieval.artifacts import digest, write_text_atomic
from retrieval.converters.base import Converted, Section
from retrieval.documents import Document
from retrieval.errors import SourceError
from retrieval.passages import ChunkSettings, PassageBuilder

# what is read from a page (the HTML converter's rules): a change re-reads every page once
RULES = 1
_NOT_NAMES = {"html", "htm", "php", "asp", "aspx"}


@dataclass(frozen=True)
class Entry:
    """One URL as last read: a page, a sitemap (``links``: its pages) or a sitemap index
    (``links``: its sitemaps)."""

    kind: str  # "page", "sitemap" or "index"
    url: str  # where it was read from, after redirects
    etag: str | None
    modified: str | None  # Last-Modified
    body: str  # SHA-256 of the body
    title: str = ""
    sections: tuple[Section, ...] = ()
    links: tuple[str, ...] = ()
    index: bool = True  # False: the page asks not to be indexed
    follow: bool = True  # False: its links are not followed

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "etag": self.etag,
                "modified": self.modified, "body": self.body, "title": self.title,
                "sections": [_section_json(s) for s in self.sections],
                "links": list(self.links), "index": self.index, "follow": self.follow}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**{**data, "sections": tuple(_section(s) for s in data["sections"]),
                      "links": tuple(data["links"])})


@dataclass
class Report:
    """What one crawl did: pages kept, and of the URLs requested how many were read and
    converted, answered 304, found unchanged by their hash, failed, or failed and were kept
    from the last crawl; duplicates merged; its warnings."""

    pages: int = 0
    converted: int = 0
    not_modified: int = 0
    unchanged: int = 0
    failed: int = 0
    kept: int = 0
    merged: int = 0
    disallowed: int = 0  # links robots.txt does not let the crawler read
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``212 pages: 3 read (changed or new), 209 unchanged (205 not modified), ...``."""
        parts = [f"{self.converted} read", f"{self.not_modified + self.unchanged} unchanged "
                 f"({self.not_modified} answered 304 Not Modified)"]
        parts += [f"{n} {what}" for n, what in (
            (self.failed, "failed"), (self.kept, "kept from the last crawl"),
            (self.merged, "duplicates merged"),
            (self.disallowed, "links disallowed by robots.txt")) if n]
        return f"{_count(self.pages, 'page')}: {', '.join(parts)}"


def load_cache(path: Path) -> dict[str, Entry]:
    """The cache a crawl left (empty when there is none, it is unreadable, or it was
    written under other reading rules)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("rules") != RULES:
            return {}
        return {url: Entry.from_json(entry) for url, entry in data["entries"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def save_cache(path: Path, url: str, entries: dict[str, Entry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"rules": RULES, "url": url, "entries": {
        u: e.to_json() for u, e in sorted(entries.items())}}, ensure_ascii=False))


def snapshot_pages(entries: Iterable[Entry], scope: str) -> tuple[list[dict[str, Any]], int]:
    """The pages to index, in crawl order (those with text that do not ask not to be
    indexed), each page read at two addresses once, and a page whose title and text equal
    an earlier one's merged into it (``also``); and how many were merged."""
    pages: list[dict[str, Any]] = []
    by_text: dict[str, dict[str, Any]] = {}
    by_url: set[str] = set()
    merged = 0
    for entry in entries:
        if entry.kind != "page" or not entry.index or not entry.sections \
                or entry.url in by_url:
            continue
        by_url.add(entry.url)
        text = digest([entry.title, [_section_json(s) for s in entry.sections]])
        if text in by_text:
            by_text[text]["also"].append(entry.url)
            merged += 1
            continue
        page = {"url": entry.url, "name": "", "title": entry.title,
                "sections": [_section_json(s) for s in entry.sections], "also": []}
        by_text[text] = page
        pages.append(page)
    for page, name in zip(pages, page_names([p["url"] for p in pages], scope), strict=True):
        page["name"] = name
    return pages, merged


def page_names(urls: Sequence[str], scope: str) -> list[str]:
    """The first part of each page's passage ids: the words of its path below ``scope``
    (``/help/billing/refunds.html`` under ``/help/``: ``billing-refunds``; the last six),
    ``home`` for the start page; a name two pages would share gets a hash of the URL."""
    names: list[str] = []
    taken: set[str] = set()
    for url in urls:
        parts = urlsplit(url)
        path = parts.path[len(scope):] if parts.path.startswith(scope) else parts.path
        words = [w for w in re.findall(r"[a-z0-9]+", unquote(f"{path} {parts.query}").lower())
                 if w not in _NOT_NAMES]
        name = "-".join(words[-6:]) or "home"
        if name in taken:
            name = f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:6]}"
        taken.add(name)
        names.append(name)
    return names


def write_snapshot(path: Path, url: str, pages: list[dict[str, Any]], report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"url": url, "digest": digest(pages), "pages": pages,
                                        "report": asdict(report)}, ensure_ascii=False))


def _snapshot(path: Path, display: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("pages"), list):
            return data
    except FileNotFoundError as exc:
        raise SourceError("not read yet: `bot train` reads the site (`bot validate "
                          "--crawl` shows what it would read)", file=display) from exc
    except (OSError, ValueError):
        pass
    raise SourceError(f"what the last crawl kept ({path}) is unreadable: run `bot train` "
                      "again", file=display)


def site_digest(path: Path) -> str:
    """The digest of the pages a snapshot holds ("" when there is none)."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("digest", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def read_report(path: Path) -> Report | None:
    """The report of the crawl that wrote a snapshot; None when there is none."""
    try:
        return Report(**json.loads(path.read_text(encoding="utf-8"))["report"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_site(path: Path, *, display: str, chunking: ChunkSettings) -> Document:
    """A crawled site's passages: each page's sections, titled with the page's title and
    headings, cited with its URL (and the heading's anchor), errors naming ``display``."""
    data = _snapshot(path, display)
    passages, places = [], []
    for page in data["pages"]:
        builder = PassageBuilder(page["url"], chunking, page["url"])
        builder.document(Converted(page["title"], tuple(_section(s) for s in page["sections"])),
                         name=page["name"])
        passages.extend(builder.passages)
        places.extend(builder.places)
    if not passages:
        raise SourceError("no page of the site has text to read", file=display)
    report = data.get("report") or {}
    return Document(passages, [], places, "web page", 0, tuple(report.get("warnings", ())),
                    len(data["pages"]))


def _section_json(section: Section) -> dict[str, Any]:
    return {"headings": list(section.headings), "text": section.text, "anchor": section.anchor}


def _section(data: dict[str, Any]) -> Section:
    return Section(tuple(data["headings"]), data["text"], anchor=data.get("anchor", ""))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
