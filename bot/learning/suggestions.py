"""Reviewable suggestions: ``DIR/suggestions/<id>.yaml``, one file each, never merged silently.

``bot suggest`` rewrites the pending suggestions each time; accepted ones (while what they
merged is in the bot, :mod:`bot.learning.decisions`) are left as they were and not suggested
again, and rejected ones are not suggested again. A file holds its ``kind``
(``faq``, ``alternatives`` or ``intent``), the item to merge (``entry`` or ``intent``, as
the user may edit it), how many conversations it came from and up to three of them.
``unanswered.yaml`` and ``withheld.yaml`` list the topics no agent answered and those whose
answer would hold one customer's details; they are not suggestions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from bot.definition.config import typed_path
from bot.errors import ConfigError, library_errors
from bot.learning.decisions import FOLDER, accepted_ids, rejected_ids
from bot.learning.exchanges import Exchange
from bot.learning.mining import Mined, Withheld
from retrieval.artifacts import write_text_atomic
from retrieval.yamlio import load_yaml

UNANSWERED = "unanswered"  # the file of question groups no agent answered (not a suggestion)
WITHHELD = "withheld"  # ... and of those whose answer would be about one customer
LISTS = (UNANSWERED, WITHHELD)
EXAMPLES = 3
SHOWN = 8  # pending ids an error lists
WIDTH = 10_000  # one line per text: easier to edit than folded lines
Kind = Literal["faq", "alternatives", "intent"]
KINDS: tuple[Kind, ...] = ("faq", "alternatives", "intent")  # the order --accept all takes
ITEM_KEY: dict[str, str] = {"faq": "entry", "alternatives": "entry", "intent": "intent"}
HOW = {
    "faq": "a new FAQ entry; accepting appends it to faq/learned.yaml",
    "alternatives": "more wordings for an existing FAQ entry; accepting appends an 'extends' "
                    "item to faq/learned.yaml",
    "intent": "a new intent linked to a new FAQ entry; accepting appends it to the intents file",
}


class SuggestionError(ConfigError):
    """A suggestion file is invalid or cannot be accepted: names the file, key and line."""


@dataclass(frozen=True)
class Suggestion:
    """One reviewable change to the bot, and the conversations it was mined from."""

    id: str
    kind: Kind
    item: dict[str, Any]  # the FAQ entry, the ``extends`` item or the intent
    count: int
    conversations: tuple[str, ...] = ()
    requires: str | None = None  # a suggestion to accept first
    examples: tuple[dict[str, str], ...] = ()
    removed: tuple[str, ...] = ()  # what was left out of the agent's reply, and why
    held_back: tuple[str, ...] = ()  # wordings left out (bot.learning.collisions), and why


def folder(bot_root: Path) -> Path:
    return bot_root / FOLDER


def from_mined(mined: Mined) -> list[Suggestion]:
    """The suggestions mining found, in the order ``--accept all`` takes them."""
    found = [Suggestion(f"faq-{e.id}", "faq", {
        "id": e.id, "question": e.question, "answer": e.answer,
        "alternatives": list(e.alternatives)}, *_provenance(e.exchanges), removed=e.removed,
        held_back=e.held_back)
        for e in mined.entries]
    found += [Suggestion(f"alt-{a.entry}", "alternatives", {
        "extends": a.entry, "alternatives": list(a.alternatives)}, *_provenance(a.exchanges))
        for a in mined.alternatives]
    for i in mined.intents:
        count, conversations, _, examples = _provenance(i.exchanges)
        found.append(Suggestion(f"intent-{i.name}", "intent", {
            "name": i.name, "faq": i.faq, "examples": list(i.examples)}, count, conversations,
            f"faq-{i.faq}", examples))
    return found


def _provenance(exchanges: Sequence[Exchange]) -> tuple[int, tuple[str, ...], None,
                                                          tuple[dict[str, str], ...]]:
    """Count, conversation ids, no requirement, and examples (answered ones first)."""
    shown = sorted(exchanges, key=lambda e: e.reply is None)[:EXAMPLES]
    return (len(exchanges), tuple(e.conversation.id for e in exchanges), None,
            tuple(_example(e) for e in shown))


def write(bot_root: Path, suggestions: Sequence[Suggestion],
          unanswered: Sequence[Sequence[Exchange]],
          withheld: Sequence[Withheld] = (), marked: Sequence[str] = ()) -> list[Suggestion]:
    """Replace the pending suggestions with ``suggestions`` (the accepted ones stay as they
    are and are not written again); returns those written. ``marked``: questions a review
    marked wrong that no entry answers, listed with the unanswered ones."""
    target = folder(bot_root)
    accepted, rejected = accepted_ids(bot_root), rejected_ids(bot_root)
    fresh = [_renamed(s, accepted) for s in suggestions
             if (s.id not in accepted or s.kind == "alternatives") and s.id not in rejected]
    changes: dict[Path, str | None] = {
        path: None for path in target.glob("*.yaml") if path.stem not in accepted}
    shown = typed_path(bot_root)
    for suggestion in fresh:
        changes[target / f"{suggestion.id}.yaml"] = render(suggestion, shown)
    if unanswered or marked:
        changes[target / f"{UNANSWERED}.yaml"] = _render_unanswered(unanswered, marked)
    if withheld:
        changes[target / f"{WITHHELD}.yaml"] = _render_withheld(withheld)
    target.mkdir(parents=True, exist_ok=True)
    replace_files(changes)
    return fresh


def _renamed(suggestion: Suggestion, accepted: set[str]) -> Suggestion:
    """More wordings for an entry that got some before: ``alt-<entry>-2``, ``-3``, ..."""
    name, n = suggestion.id, 2
    while name in accepted:
        name, n = f"{suggestion.id}-{n}", n + 1
    return replace(suggestion, id=name)


def _example(exchange: Exchange) -> dict[str, str]:
    found = {"conversation": exchange.conversation.id, "source": exchange.conversation.source,
             "question": exchange.question}
    if exchange.reply is not None:
        found["reply"] = exchange.reply
    return found


def render(suggestion: Suggestion, bot_shown: str) -> str:
    """The suggestion's file: a header saying what it is and how to accept it, then YAML."""
    key = ITEM_KEY[suggestion.kind]
    lines = [f"# Suggested by `bot suggest` from {suggestion.count} past conversation"
             f"{'' if suggestion.count == 1 else 's'}: {HOW[suggestion.kind]}.",
             f"# Review and edit `{key}` (check the facts; replace any [EMAIL], [PHONE], ... "
             "that redaction left), then run",
             f"#   bot suggest {bot_shown} --accept {suggestion.id}",
             "# Delete the file to drop it. `bot suggest` rewrites pending suggestions, edited "
             "or not; accepted ones stay."]
    if suggestion.requires:
        lines.append(f"# Accept {suggestion.requires} first (or all at once: --accept all).")
    if suggestion.removed:
        lines.append("# Left out of the agent's reply as details of one customer's case:")
        lines += [f"#   {' '.join(why.split())}" for why in suggestion.removed]
    if suggestion.held_back:
        lines.append("# Wordings left out, as they would take questions another entry answers "
                     "(add one to `alternatives` if it belongs here all the same):")
        lines += [f"#   {' '.join(why.split())}" for why in suggestion.held_back]
    data: dict[str, Any] = {"id": suggestion.id, "kind": suggestion.kind,
                            "count": suggestion.count}
    if suggestion.requires:
        data["requires"] = suggestion.requires
    data[key] = suggestion.item
    data["conversations"] = list(suggestion.conversations)
    data["examples"] = [dict(e) for e in suggestion.examples]
    return "\n".join(lines) + "\n" + dump_yaml(data)


def _render_unanswered(groups: Sequence[Sequence[Exchange]], marked: Sequence[str] = ()) -> str:
    data: dict[str, Any] = {"kind": UNANSWERED, "count": sum(len(g) for g in groups), "groups": [
        {"count": len(g), "questions": [e.question for e in g],
         "conversations": [e.conversation.id for e in g]} for g in groups]}
    if marked:  # a review said the bot answered wrongly and no entry answers them
        data["marked_wrong_unanswerable"] = list(marked)
    return ("# Questions customers asked that no agent answered, grouped by `bot suggest`,\n"
            "# and those a review marked wrong that no FAQ entry answers.\n"
            "# Not a suggestion: write FAQ entries for them yourself (in faq/learned.yaml, "
            "say).\n" + dump_yaml(data))


def _render_withheld(groups: Sequence[Withheld]) -> str:
    data = {"kind": WITHHELD, "count": sum(len(g.exchanges) for g in groups), "groups": [
        {"count": len(g.exchanges), "reason": g.reason,
         "questions": [e.question for e in g.exchanges],
         "conversations": [e.conversation.id for e in g.exchanges]} for g in groups]}
    return ("# Topics `bot suggest` found but suggests no answer for: each agreed answer held "
            "one customer's\n# details (names, masked data, amounts, dates, references). Not a "
            "suggestion: write FAQ\n# entries for them yourself (in faq/learned.yaml, say).\n"
            + dump_yaml(data))


def load(bot_root: Path, suggestion_id: str) -> Suggestion:
    """A pending or accepted suggestion as its file now says (the user may have edited it)."""
    path = folder(bot_root) / f"{suggestion_id}.yaml"
    shown = typed_path(path)
    if suggestion_id in LISTS:
        what = "no agent answered" if suggestion_id == UNANSWERED else \
            "whose answers would hold one customer's details"
        raise SuggestionError(f"lists questions {what}, nothing to accept: write FAQ entries "
                              "for them yourself", file=shown)
    if not path.is_file():
        ids = pending(bot_root)
        known = ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN
                                          else "") if ids else "none; run `bot suggest` first"
        raise SuggestionError(f"no suggestion {suggestion_id!r} (pending: {known})",
                              file=typed_path(folder(bot_root)))
    try:
        with library_errors():
            data = load_yaml(path, display=shown)
    except ConfigError as exc:  # the file's own SourceError, translated
        raise SuggestionError(exc.reason, file=exc.file, line=exc.line) from exc
    if not isinstance(data, dict):
        raise SuggestionError("must be a mapping (id, kind, entry or intent, ...)", file=shown)
    kind = data.get("kind")
    if kind not in KINDS:
        raise _error(data, "kind", f"must be one of {', '.join(KINDS)}", shown)
    key = ITEM_KEY[kind]
    item = data.get(key)
    if not isinstance(item, dict):
        raise _error(data, key, "must be a mapping", shown)
    requires, count = data.get("requires"), data.get("count")
    return Suggestion(suggestion_id, kind, item, count if isinstance(count, int) else 0,
                      tuple(str(c) for c in data.get("conversations") or ()),
                      str(requires) if requires else None)


def _error(data: Any, key: str, reason: str, shown: str) -> SuggestionError:
    lines = getattr(data, "key_lines", {})
    return SuggestionError(reason, file=shown, path=key,
                           line=lines.get(key, getattr(data, "line", None)))


def pending(bot_root: Path) -> list[str]:
    """The ids of the suggestions neither accepted nor rejected, in the order ``--accept
    all`` takes."""
    decided = accepted_ids(bot_root) | rejected_ids(bot_root)
    ids = [p.stem for p in sorted(folder(bot_root).glob("*.yaml"))
           if p.stem not in decided and p.stem not in LISTS]
    order = {kind: n for n, kind in enumerate(("faq-", "alt-", "intent-"))}
    return sorted(ids, key=lambda i: (next((n for p, n in order.items() if i.startswith(p)),
                                           len(order)), i))


def replace_files(changes: Mapping[Path, str | None]) -> dict[Path, str | None]:
    """Write each file through a temporary file and a rename (None: delete it); returns what
    they held before, which restores them when given back."""
    before = {path: path.read_text(encoding="utf-8") if path.exists() else None
              for path in changes}
    for path, text in changes.items():
        if text is None:
            path.unlink(missing_ok=True)
            continue
        write_text_atomic(path, text)
    return before


class _Dumper(yaml.SafeDumper):
    """Block YAML as people write it: list items indented under their key, paragraphs as
    literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=WIDTH,
                     default_flow_style=False)
