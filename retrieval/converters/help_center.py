"""Help-center exports: a Zendesk Guide's or an Intercom help center's articles, saved as
their APIs return them, each published article a document.

- Zendesk Guide, ``GET /api/v2/help_center[/{locale}]/articles.json``: a page
  ``{"articles": [{"id", "html_url", "title", "body", "locale", "draft", ...}], "next_page",
  ...}`` (``{"article": {...}}``, one article, too).
- Intercom, ``GET /articles``: ``{"type": "list", "data": [{"type": "article", "id",
  "title", "body", "url", "state", ...}], "pages", "total_count"}`` (one article too).

A ``.json`` file holds one page; a ``.jsonl`` file whose first line is a page holds one page
a line; a folder of page files is read file by file. The format is recognised by content:
a ``.json`` FAQ source is always an export (it is no other format), and a ``.jsonl`` file is
one only when its first line is a page (else it is FAQ entries, one a line).

Drafts are left out and counted. An article's body is HTML, read by the HTML converter
(``html.read_html``: headings make the heading path); its title is the article's, its
passages cite its ``html_url`` (Zendesk) or ``url`` (Intercom; the file when it has none),
and their ids start with the platform and the article's id (``zendesk-360001234567``), so
they do not change when other articles do; a Zendesk translation (``locale`` other than
``source_locale``) also takes its locale (``zendesk-360001234567-fr``). A field that is not
what the API returns is a :class:`~retrieval.errors.SourceError` naming the file, the line
of a ``.jsonl`` file and the field (``articles[3].html_url``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.converters.base import Converted, Export, Exported, one_line, read_bytes
from retrieval.converters.html import read_html
from retrieval.errors import SourceError

WHAT = ("one page of Zendesk Guide articles as the Help Center API returns them "
        '({"articles": [...]}) or an Intercom article list ({"type": "list", "data": [...]})')


@dataclass(frozen=True)
class Article:
    """One article as an export holds it, its fields checked."""

    id: str
    title: str
    body: str  # HTML
    url: str  # "" when it has none
    locale: str
    draft: bool
    translation: bool = False  # in another locale than the article's own (Zendesk)


@dataclass(frozen=True)
class _Field:
    """Where a value is in the file, for errors: the file, a ``.jsonl`` line, the key path."""

    file: str
    line: int | None
    path: str = ""

    def key(self, key: str | int) -> _Field:
        path = f"{self.path}[{key}]" if isinstance(key, int) else \
            f"{self.path}.{key}" if self.path else key
        return _Field(self.file, self.line, path)

    def error(self, message: str) -> SourceError:
        return SourceError(message, file=self.file, path=self.path, line=self.line)


class HelpCenterConverter:
    """Reads help-center exports (the module's docstring says which and how)."""

    suffixes: tuple[str, ...] = (".json", ".jsonl")

    def recognises(self, path: Path) -> bool:
        """Whether ``path`` is an export: any ``.json`` file, and a ``.jsonl`` file whose
        first line is a Zendesk or Intercom page."""
        if path.suffix.lower() == ".json":
            return True
        try:
            with path.open("rb") as lines:
                first = next((line for line in lines if line.strip()), b"")
            return _platform(json.loads(first)) is not None
        except (OSError, ValueError):  # unreadable, or not JSON: the JSONL reader says so
            return False

    def read(self, path: Path, *, display: str) -> Export:
        pages = list(_pages(path, display))
        kinds = {_platform(page) for page, _ in pages}
        if None in kinds:
            at = next(at for page, at in pages if _platform(page) is None)
            raise at.error(f"is not a help-center export: expected {WHAT}")
        if len(kinds) > 1:
            raise SourceError("mixes Zendesk and Intercom pages: export each help center to "
                              "a file of its own", file=display)
        kind = str(next(iter(kinds)))
        articles = [a for page, at in pages for a in _READERS[kind](page, at)]
        return _documents(kind, articles, display)


def _pages(path: Path, display: str) -> Iterator[tuple[Any, _Field]]:
    """The file's pages, each with where it is: the whole file, or a line of a ``.jsonl``."""
    try:
        text = read_bytes(path, display).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"is not UTF-8 text (byte {exc.start})", file=display) from exc
    if not text.strip():
        raise SourceError(f"is empty: expected {WHAT}", file=display)
    one_page = path.suffix.lower() == ".json"
    numbered = [(None, text)] if one_page else list(enumerate(text.splitlines(), start=1))
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            yield json.loads(line), _Field(display, number)
        except json.JSONDecodeError as exc:
            raise SourceError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=display,
                              line=exc.lineno if one_page else number) from exc


def _platform(page: Any) -> str | None:
    """Whose page ``page`` is: "Zendesk", "Intercom", or None."""
    if not isinstance(page, dict):
        return None
    if isinstance(page.get("articles"), list) or isinstance(page.get("article"), dict):
        return "Zendesk"
    if (page.get("type") == "list" and isinstance(page.get("data"), list)) or \
            page.get("type") == "article":
        return "Intercom"
    return None


def _zendesk(page: dict[str, Any], at: _Field) -> Iterator[Article]:
    """A Zendesk Guide page's articles (Help Center API, Articles: JSON format)."""
    key = "articles" if "articles" in page else "article"
    items = page[key] if key == "articles" else [page[key]]
    for n, item in enumerate(items):
        here = at.key(key).key(n) if key == "articles" else at.key(key)
        fields = _mapping(item, here)
        title = fields.get("title") or fields.get("name")
        locale = _locale(fields.get("locale"), here.key("locale"))
        source = _locale(fields.get("source_locale"), here.key("source_locale"))
        yield Article(
            id=_id(fields, here), title=_text(title, here.key("title")),
            body=_html(fields.get("body"), here.key("body")),
            url=_url(fields.get("html_url"), here.key("html_url")), locale=locale,
            draft=_flag(fields.get("draft", False), here.key("draft")),
            translation=bool(locale and source and locale != source))


def _intercom(page: dict[str, Any], at: _Field) -> Iterator[Article]:
    """An Intercom article list's articles (REST API, Articles: the article object)."""
    items = page["data"] if page.get("type") == "list" else [page]
    for n, item in enumerate(items):
        here = at.key("data").key(n) if page.get("type") == "list" else at
        fields = _mapping(item, here)
        if fields.get("type", "article") != "article":
            raise here.key("type").error(f"must be 'article' (an Intercom article list "
                                         f"holds only articles), not {fields['type']!r}")
        state = fields.get("state", "published")
        if state not in ("published", "draft"):
            raise here.key("state").error(f"must be 'published' or 'draft', not {state!r}")
        url = fields.get("url")
        yield Article(
            id=_id(fields, here), title=_text(fields.get("title"), here.key("title")),
            body=_html(fields.get("body"), here.key("body")),
            url="" if url is None else _url(url, here.key("url")),
            locale=_locale(fields.get("default_locale"), here.key("default_locale")),
            draft=state == "draft")


_READERS: dict[str, Callable[[dict[str, Any], _Field], Iterator[Article]]] = {
    "Zendesk": _zendesk, "Intercom": _intercom}


def _documents(kind: str, articles: list[Article], display: str) -> Export:
    """The published articles as documents: drafts counted, an article the file holds
    twice (same id and locale) read once, one without text named in a warning."""
    published = [a for a in articles if not a.draft]
    seen: set[tuple[str, str]] = set()
    documents: list[Exported] = []
    warnings: list[str] = []
    for article in published:
        locale = f"-{article.locale}" if article.translation else ""
        where = f"article {article.id}" + (f" ({article.locale})" if locale else "")
        if (article.id, article.locale) in seen:
            warnings.append(f"{display}, {where}: is in the file twice; read once")
            continue
        seen.add((article.id, article.locale))
        _, sections = read_html(article.body)
        if not sections:
            warnings.append(f"{display}, {where} ({article.title!r}): has no text to read")
            continue
        documents.append(Exported(Converted(article.title, sections),
                                  f"{kind.lower()}-{article.id}{locale}", article.url, where))
    return Export(kind, tuple(documents), len(articles) - len(published), tuple(warnings))


def _mapping(value: Any, at: _Field) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise at.error("must be an article object (a mapping of its fields)")
    return value


def _id(fields: dict[str, Any], at: _Field) -> str:
    value = fields.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise at.key("id").error("must be the article's id (a number or a string); "
                                 + ("it is missing" if value is None else f"not {value!r}"))
    return str(value).strip()


def _text(value: Any, at: _Field) -> str:
    if not isinstance(value, str) or not value.strip():
        raise at.error("must be a non-empty string" + ("; it is missing" if value is None
                                                         else ""))
    return one_line(value)


def _html(value: Any, at: _Field) -> str:
    if value is not None and not isinstance(value, str):
        raise at.error("must be the article's body as a string of HTML (or null)")
    return value or ""


def _url(value: Any, at: _Field) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise at.error("must be the article's web address (http:// or https://)"
                       + ("; it is missing" if value is None else f", not {value!r}"))
    return value.strip()


def _locale(value: Any, at: _Field) -> str:
    if value is not None and not isinstance(value, str):
        raise at.error("must be a locale such as 'en-us' (a string)")
    return (value or "").strip().lower()


def _flag(value: Any, at: _Field) -> bool:
    if not isinstance(value, bool):
        raise at.error(f"must be true or false, not {value!r}")
    return value
