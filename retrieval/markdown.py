"""Markdown FAQ files, read as a person reads them.

``## A heading ending in a question mark?`` and the text under it are a question and its
answer; other sections are free text (the first ``#`` heading is the document's title). Front
matter (YAML between ``---`` lines, or TOML between ``+++`` lines, at the top) is metadata:
its ``title`` is the document's title and its ``category`` the passages' category. Liquid and
Jekyll tags (``{% ... %}``, ``{{ ... }}``, ``{% comment %}`` blocks with what they hold) and
Hugo shortcodes (``{{< ... >}}``, ``{{% ... %}}``) are removed, and so are ``**bold**`` and
``__bold__`` marks, raw HTML tags (not comments: those are internal notes) and ``Q:``/``A:``
labels at the start of a line. Line numbers in errors stay those of the file.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import yaml

from retrieval.converters.base import Converted, Section
from retrieval.errors import SourceError
from retrieval.passages import PassageBuilder

_FRONT = re.compile(r"\A(?:\ufeff)?(---|\+\+\+)[ \t]*\n(.*?)\n(?:---|\.\.\.|\+\+\+)[ \t]*(?:\n|\Z)",
                    re.DOTALL)
_TEMPLATE = re.compile(
    r"\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}"  # a Liquid comment, with its text
    r"|\{\{[<%].*?[>%]\}\}"  # a Hugo shortcode
    r"|\{%.*?%\}|\{\{.*?\}\}",  # a Liquid tag or output
    re.DOTALL)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|\b__(?=\S)(.+?)(?<=\S)__\b", re.DOTALL)
_TAG_NAMES = ("a|abbr|b|bdi|bdo|big|blockquote|br|button|caption|center|cite|code|col|colgroup|"
              "dd|del|details|dfn|div|dl|dt|em|figcaption|figure|font|h[1-6]|hr|i|iframe|img|"
              "ins|kbd|li|mark|ol|p|picture|pre|q|s|samp|section|small|source|span|strike|"
              "strong|sub|summary|sup|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|var|video|wbr")
_TAG = re.compile(rf"</?(?:{_TAG_NAMES})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_INLINE_TAG = re.compile(r"</?(?:a|abbr|b|bdi|bdo|big|cite|code|del|dfn|em|font|i|ins|kbd|"
                         r"mark|q|s|samp|small|span|strike|strong|sub|sup|tt|u|var|wbr)\b",
                         re.IGNORECASE)
_ATTRIBUTES = re.compile(r"\{:[^{}\n]*\}")  # kramdown's attribute lists: {:target="_blank"}
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")  # \_ and \* show _ and *
_RELATIVE_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\((?![a-z][a-z0-9+.-]*:)[^()\s]*\)",
                            re.IGNORECASE)  # [Web Vault](/article/x): a link only on its site
_LABEL = re.compile(r"^([ \t]*(?:>[ \t]*)*)(?:Q|A)[ \t]*:[ \t]*", re.MULTILINE)


def load_markdown(builder: PassageBuilder, text: str, *, name: str) -> None:
    """Add a Markdown file's passages to ``builder``: ``## Question?`` headings become Q/A
    pairs; other sections are the sections of a document named ``name`` (the file's stem):
    titled with the document's title and the headings above them, with ids made of
    ``name`` and those headings (``PassageBuilder.document``), so that the same heading in
    two articles ("Permissions") names two passages. A section of internal notes alone adds
    nothing; a heading inside an HTML comment is part of the comment."""
    meta, text = _front_matter(text, builder.display)
    text = _TEMPLATE.sub(_blank, text)
    title = _meta_text(meta, "title")
    category = _meta_text(meta, "category") or _meta_text(meta, "categories")
    seen_title = False
    path: list[tuple[int, str]] = []  # the headings above the section: (level, text)
    start = 1  # the section's first line
    body: list[str] = []
    in_comment = False

    def flush() -> None:
        content = clean_inline("\n".join(body)).strip()
        if not content:
            return
        heading = path[-1][1] if path else ""
        at = (heading, start)
        if heading.rstrip().endswith("?"):
            builder.qa(heading, content, at=at, category=category)
        elif builder.shown(content, at, notes_only=True):  # errors name the line
            section = Section(tuple(h for _, h in path), content)
            builder.document(Converted(title or name, (section,)), name=name,
                             category=category)

    for number, line in enumerate(text.splitlines(), start=1):
        match = None if in_comment else re.match(r"^(#{1,6})\s+(.*)$", line)
        in_comment = _inside_comment(line, in_comment)
        if match:
            flush()
            body, start = [], number
            words = clean_inline(match.group(2)).strip()
            level = len(match.group(1))
            if level == 1 and not seen_title:
                seen_title, path = True, []
                title = title or words
            else:
                path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, words)]
        else:
            body.append(line)
    flush()


def clean_inline(text: str) -> str:
    """``text`` without bold marks, raw HTML tags (comments stay), ``Q:``/``A:`` labels,
    kramdown attribute lists and backslash escapes; a link to a page of the same site (a
    relative address, which leads nowhere once quoted elsewhere) becomes its text, and an
    image there goes."""
    text = _ATTRIBUTES.sub("", text)
    text = _RELATIVE_LINK.sub(lambda m: "" if m.group(1) else m.group(2), text)  # images go
    text = _ESCAPED.sub(r"\1", text)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _TAG.sub(lambda m: "" if _INLINE_TAG.match(m.group()) else " ", text)
    text = _LABEL.sub(r"\1", text)
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)  # where a tag ended a line
    return re.sub(r"\n{3,}", "\n\n", text)  # where a removed line stood between paragraphs


def _front_matter(text: str, display: str) -> tuple[dict[str, Any], str]:
    """The front matter's metadata, and the text with it made blank lines."""
    match = _FRONT.match(text)
    if match is None:
        return {}, text
    fence, content = match.group(1), match.group(2)
    try:
        meta = tomllib.loads(content) if fence == "+++" else yaml.safe_load(content)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"front matter is not valid {'TOML' if fence == '+++' else 'YAML'} "
                          f"({str(exc).splitlines()[0]})", file=display, line=1) from exc
    if not isinstance(meta, dict):  # a rule (---) at the top, not front matter
        return {}, text
    return meta, _blank(match) + text[match.end():]


def _meta_text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    if isinstance(value, list) and value:  # Jekyll's categories: [a, b]
        value = value[0]
    return " ".join(str(value).split()) if isinstance(value, str | int | float) else ""


def _blank(match: re.Match[str]) -> str:
    """What replaces removed text: its line breaks, so later lines keep their numbers."""
    return "\n" * match.group().count("\n")


def _inside_comment(line: str, inside: bool) -> bool:
    """Whether an HTML comment is open after ``line`` (``inside``: whether one was before)."""
    marks = re.findall(r"<!--|-->", line)  # the last one decides
    return marks[-1] == "<!--" if marks else inside
