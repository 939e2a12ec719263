"""HTML (.html, .htm): the page's own text, read with Beautiful Soup.

Left out: scripts, styles, forms, navigation (``nav``), ``aside``, the page's ``header`` and
``footer`` (those inside an ``article`` or ``main`` are the article's and stay), hidden
elements, and cookie banners (any element whose id or class names cookie, consent or
banner). When the page has a ``main`` element, only it is read. Headings ``h1`` to ``h6``
make the heading path (each under the nearest heading of a higher level, so a page or an
article body that starts at ``h2`` reads right); list items become ``- item`` lines and
tables rows of ``header: value``. The title is the ``<title>``, else the first ``h1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.converters.base import (
    PLAIN,
    Converted,
    HeadingPath,
    ReadOptions,
    Section,
    looks_binary,
    one_line,
    read_bytes,
    table_text,
    title_from,
)
from retrieval.errors import SourceError

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, PageElement, Tag

_DROPPED = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe",
                      "object", "embed", "nav", "aside", "form", "button", "select",
                      "textarea", "input", "dialog", "menu"})
_CHROME = re.compile(r"cookie|consent|banner", re.IGNORECASE)
_KEPT = frozenset({"html", "body", "main", "article"})  # never dropped for a class name
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn",
                     "em", "i", "ins", "kbd", "label", "mark", "q", "s", "samp", "small",
                     "span", "strong", "sub", "sup", "time", "u", "var", "wbr", "font"})
_LISTS = ("ul", "ol")


class HtmlConverter:
    """Reads ``.html`` and ``.htm`` files (the encoding from the file's own declaration)."""

    suffixes: tuple[str, ...] = (".html", ".htm")
    kind: str = "HTML"

    def convert(self, path: Path, *, display: str, options: ReadOptions = PLAIN) -> Converted:
        data = read_bytes(path, display)
        if looks_binary(data):
            raise SourceError("is not an HTML file (it holds binary data)", file=display)
        title, sections = read_html(data)
        return Converted(title or title_from(path), sections)


def read_html(data: bytes | str) -> tuple[str, tuple[Section, ...]]:
    """A page's title ("" when it has none) and its sections, read as the module's
    docstring says: for HTML that comes inside another format too (a help center's article
    bodies), where a fragment without ``html`` or ``body`` is read whole."""
    from bs4 import BeautifulSoup  # loaded when HTML is read, not at start-up

    soup = BeautifulSoup(data, "html.parser")
    title = one_line(soup.title.get_text()) if soup.title is not None else ""
    _drop_chrome(soup)
    root = soup.find("main") or soup.body or soup
    if not title and (first := root.find("h1")) is not None:
        title = one_line(first.get_text(" "))
    reader = _Reader()
    reader.walk(root)
    reader.flush()
    return title, tuple(reader.sections)


def _drop_chrome(soup: BeautifulSoup) -> None:
    """Remove what is not the page's own text (the module's docstring says what)."""
    from bs4 import Tag

    doomed = [tag for tag in soup.find_all(True) if isinstance(tag, Tag) and _is_chrome(tag)]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


def _is_chrome(tag: Tag) -> bool:
    name = tag.name
    if name in _DROPPED:
        return True
    if name in ("header", "footer"):
        return tag.find_parent(["article", "main"]) is None
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true" or \
            re.search(r"display\s*:\s*none", str(tag.get("style", ""))):
        return True
    classes = tag.get("class")
    names = " ".join([str(tag.get("id", "")), *(map(str, classes) if isinstance(classes, list)
                                                  else [str(classes or "")])])
    return name not in _KEPT and bool(_CHROME.search(names))


class _Reader:
    """Walks the page in order, gathering its sections."""

    def __init__(self) -> None:
        self.path = HeadingPath()
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.sections: list[Section] = []

    def walk(self, node: Tag) -> None:
        from bs4 import Tag

        for child in node.children:
            if not isinstance(child, Tag):
                if _is_text(child):
                    self.inline.append(str(child))
                continue
            name = child.name
            if name in _HEADINGS:
                self.heading(_HEADINGS[name], _text_of(child), _anchor(child))
            elif name in _LISTS:
                self.end_block()
                self.blocks.extend(_items(child))
            elif name == "table":
                self.end_block()
                self.blocks.append(table_text(
                    [_text_of(cell) for cell in row.find_all(["th", "td"], recursive=False)]
                    for row in child.find_all("tr")))
            elif name in _INLINE:
                self.walk(child)
            else:  # a block: p, div, section, pre, blockquote, br, ...
                self.end_block()
                self.walk(child)
                self.end_block()

    def end_block(self) -> None:
        text = one_line("".join(self.inline))
        self.inline.clear()
        if text:
            self.blocks.append(text)

    def heading(self, level: int, title: str, anchor: str = "") -> None:
        self.flush()
        if title:
            self.path.enter(level, title, anchor)

    def flush(self) -> None:
        self.end_block()
        text = "\n\n".join(b for b in self.blocks if b)
        if text:
            self.sections.append(Section(self.path.titles, text, anchor=self.path.anchor))
        self.blocks.clear()


def _anchor(heading: Tag) -> str:
    """The fragment that links to ``heading``: its ``id``, else that of an element in it
    (``<a id>`` or ``<a name>``), else its parent's when the heading is the parent's first
    element (``<section id="fees"><h2>``); "" when there is none."""
    from bs4 import Tag

    found = heading.get("id") or next(
        (t.get("id") or t.get("name") for t in heading.find_all(True)
         if isinstance(t, Tag) and (t.get("id") or (t.name == "a" and t.get("name")))), "")
    parent = heading.parent
    if not found and parent is not None and parent.name not in ("body", "html", "main") \
            and parent.find(True) is heading:
        found = parent.get("id") or ""
    return one_line(str(found))


def _is_text(node: PageElement) -> bool:
    """A piece of the page's text (not a comment, doctype or processing instruction)."""
    from bs4.element import NavigableString, PreformattedString

    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


def _strings(node: Tag, *, skip: tuple[str, ...] = ()) -> Iterator[str]:
    from bs4 import Tag

    for child in node.children:
        if isinstance(child, Tag):
            if child.name in skip:
                continue
            spaced = child.name not in _INLINE
            yield " " if spaced else ""
            yield from _strings(child, skip=skip)
            yield " " if spaced else ""
        elif _is_text(child):
            yield str(child)


def _text_of(node: Tag, *, skip: tuple[str, ...] = ()) -> str:
    """The node's text on one line (a space where a block element starts or ends)."""
    return one_line("".join(_strings(node, skip=skip)))


def _items(listing: Tag, depth: int = 0) -> list[str]:
    """A list's items as ``- item`` lines, a nested list's indented under its item."""
    lines = []
    for item in listing.find_all("li", recursive=False):
        text = _text_of(item, skip=_LISTS)
        if text:
            lines.append(f"{'  ' * depth}- {text}")
        for nested in [n for n in item.find_all(_LISTS) if n.find_parent("li") is item]:
            lines.extend(_items(nested, depth + 1))
    return ["\n".join(lines)] if lines and not depth else lines
