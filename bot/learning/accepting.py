"""``bot suggest DIR --accept ID|all``: merge suggestions into the bot's own files.

A new FAQ entry, or an ``extends`` item with more wordings for an existing one, is appended
to ``faq/learned.yaml``; a new intent to the bot's intents file, as text, so the comments
and layout around it stay. Each suggestion is checked first (its fields, an id or name that
is free, the entry it extends or links); the files are then replaced atomically and the
bot loaded again with its FAQ, and everything is put back when it no longer loads.

Text that still holds a redaction placeholder (``[PHONE]``...) or a person's name the imported
conversations give (:mod:`bot.learning.privacy`) is refused, naming the file, line and field,
unless forced; then each is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.definition.config import BotDefinition, typed_path
from bot.definition.loader import load_bot
from bot.errors import BotError, library_errors
from bot.learning import decisions
from bot.learning import suggestions as store
from bot.learning.privacy import Names, private, vocabulary
from bot.learning.suggestions import Suggestion, SuggestionError, dump_yaml, replace_files
from bot.learning.transcripts import load_conversations
from retrieval.knowledge import load_passages
from retrieval.yamlio import load_yaml

LEARNED = Path("faq") / "learned.yaml"
LEARNED_HEADER = (
    "# FAQ entries learned from past conversations: `bot suggest DIR --accept ID` appends\n"
    "# here. Edit freely. An item {extends: <entry id>, alternatives: [...]} adds wordings to\n"
    "# an entry of any FAQ file.\n")
ENTRY_KEYS = {"id", "question", "answer", "alternatives", "category"}
INTENT_KEYS = {"name", "faq", "examples", "description", "title"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
CHECKED = {"faq": ("entry", ("question", "answer", "alternatives", "category")),
           "alternatives": ("entry", ("alternatives",)),
           "intent": ("intent", ("examples", "title", "description"))}  # the merged texts


@dataclass(frozen=True)
class Accepted:
    """A suggestion merged into the bot, and the file it went into."""

    id: str
    file: str
    warnings: tuple[str, ...] = ()  # private text accepted with --force


@dataclass
class _Plan:
    """The bot's files as they will read after the suggestions are merged."""

    bot: BotDefinition
    entries: set[str]  # every FAQ entry id, the new ones included
    intents: set[str]
    texts: dict[Path, str] = field(default_factory=dict)
    into: dict[str, str] = field(default_factory=dict)

    def append(self, path: Path, text: str, *, header: str = "") -> None:
        current = self.texts.get(path)
        if current is None:
            current = path.read_text(encoding="utf-8") if path.exists() else header
        if current and not current.endswith("\n"):
            current += "\n"
        self.texts[path] = current + "\n" + text


def accept(bot_root: Path, which: str, *, force: bool = False) -> list[Accepted]:
    """Merge suggestion ``which`` (or ``all`` pending ones) into the bot in ``bot_root``;
    text holding a placeholder or a person's name is refused unless ``force``."""
    bot = load_bot(bot_root)
    root = bot.root
    accepted = decisions.accepted_ids(root)
    if which in accepted:
        raise SuggestionError(f"{which} was accepted already, and is in the bot (take it "
                              "back with --unaccept)",
                              file=typed_path(store.folder(root) / f"{which}.yaml"))
    ids = store.pending(root) if which == "all" else [which]
    if not ids:
        raise SuggestionError("no pending suggestions to accept; run `bot suggest` first",
                              file=typed_path(store.folder(root)))
    chosen = [store.load(root, i) for i in ids]
    with library_errors():
        passages = load_passages(bot.faq_sources(), bot.config.faq) if bot.config.faq else []
    people = Names.learn(load_conversations(root), vocabulary(
        passages, bot.config.name, bot.config.persona.name))
    found = {s.id: _private(root, s, people) for s in chosen}
    problems = [line for lines in found.values() for line in lines]
    if problems and not force:
        raise SuggestionError(problems[0] + "".join(f"\n  {p}" for p in problems[1:]) +
                              "\nreplace or remove them in the suggestion file, or accept "
                              "anyway with --force")
    plan = _Plan(bot, {p.id for p in passages}, {i.name for i in bot.config.intents})
    for suggestion in chosen:
        _merge(plan, suggestion)
    changes: dict[Path, str | None] = dict(plan.texts)
    changes[store.folder(root) / decisions.ACCEPTED] = decisions.accepted_text(
        root, [s.id for s in chosen], plan.into)
    for path in changes:
        path.parent.mkdir(parents=True, exist_ok=True)
    before = replace_files(changes)
    try:
        _check(root, plan)
    except BotError:
        replace_files(before)
        raise
    return [Accepted(s.id, plan.into[s.id], tuple(found[s.id])) for s in chosen]


def _private(root: Path, suggestion: Suggestion, people: Names) -> list[str]:
    """``file:line: field: holds ...`` for each merged text of ``suggestion`` that holds a
    placeholder or a person's name."""
    where = typed_path(store.folder(root) / f"{suggestion.id}.yaml")
    key, fields = CHECKED[suggestion.kind]
    lines: list[str] = []
    for name in fields:
        for path, text, line in _texts(suggestion.item, key, name):
            if found := private(text, people):
                place = where if line is None else f"{where}:{line}"
                held = ", ".join(dict.fromkeys(f.describe() for f in found))
                lines.append(f"{place}: {path}: holds {held}")
    return lines


def _texts(item: Any, key: str, name: str) -> list[tuple[str, str, int | None]]:
    """The text of field ``name`` (or of each item of a list), its key path and line."""
    value = item.get(name)
    if isinstance(value, str):
        return [(f"{key}.{name}", value, getattr(item, "key_lines", {}).get(name))]
    if not isinstance(value, list):
        return []
    lines = getattr(value, "item_lines", [None] * len(value))
    return [(f"{key}.{name}[{n}]", text, lines[n]) for n, text in enumerate(value)
            if isinstance(text, str)]


def _merge(plan: _Plan, suggestion: Suggestion) -> None:
    where = typed_path(store.folder(plan.bot.root) / f"{suggestion.id}.yaml")
    item = suggestion.item
    learned = plan.bot.root / LEARNED
    note = f"# {suggestion.id}: from {suggestion.count} past conversations (bot suggest)\n"
    if suggestion.kind == "faq":
        entry = _entry(item, where)
        if entry["id"] in plan.entries:
            raise _error(item, "entry", "id", f"the FAQ already has an entry {entry['id']!r}; "
                         "give this one another id", where)
        plan.entries.add(entry["id"])
        plan.append(learned, note + dump_yaml([entry]), header=LEARNED_HEADER)
        plan.into[suggestion.id] = typed_path(learned)
    elif suggestion.kind == "alternatives":
        target = _text(item, "entry", "extends", where)
        if target not in plan.entries:
            raise _error(item, "entry", "extends", f"the FAQ has no entry {target!r} (any more)",
                         where)
        extension = {"extends": target, "alternatives": _strings(item, "entry", "alternatives",
                                                                 where)}
        plan.append(learned, note + dump_yaml([extension]), header=LEARNED_HEADER)
        plan.into[suggestion.id] = typed_path(learned)
    else:
        intent = _intent(item, where)
        if intent["name"] in plan.intents:
            raise _error(item, "intent", "name", f"the bot already has an intent "
                         f"{intent['name']!r}; give this one another name", where)
        if intent["faq"] not in plan.entries:
            first = f"accept {suggestion.requires} first, or " if suggestion.requires else ""
            raise _error(item, "intent", "faq", f"the FAQ has no entry {intent['faq']!r} yet: "
                         f"{first}name the entry's id as you accepted it", where)
        plan.intents.add(intent["name"])
        plan.into[suggestion.id] = typed_path(_append_intent(plan, note + dump_yaml([intent])))


def _append_intent(plan: _Plan, text: str) -> Path:
    """Append an intent to the file ``intents:`` names (created when there is none)."""
    bot = plan.bot
    raw = load_yaml(bot.file, display=typed_path(bot.file))
    section = raw.get("intents") if isinstance(raw, dict) else None
    if section is None:
        path = bot.root / "intents.yaml"
        if path.exists():
            raise SuggestionError("has no 'intents' section, and intents.yaml exists: add "
                                  "'intents: intents.yaml' to it first", file=typed_path(bot.file))
        plan.append(bot.file, "intents: intents.yaml  # added by bot suggest --accept\n")
        plan.append(path, text, header="# Intents learned from past conversations.\n")
        return path
    if not (isinstance(section, str) and section.endswith((".yaml", ".yml"))):
        raise SuggestionError("the intents are written inline here: move them to a file "
                              "(intents: intents.yaml) to accept intents, or add this one by "
                              f"hand:\n{text}", file=typed_path(bot.file), path="intents")
    path = bot.root / section
    plan.append(path, text)
    return path


def _check(root: Path, plan: _Plan) -> None:
    """The merged bot loads, with its FAQ, and its FAQ sources read the learned file."""
    bot = load_bot(root)
    learned = (root / LEARNED).resolve()
    faq = bot.config.faq
    with library_errors():
        sources = bot.faq_sources() if faq else []
        if root / LEARNED in plan.texts and all(s.path.resolve() != learned for s in sources):
            patterns = ", ".join(map(str, faq.sources)) if faq else "none"
            raise SuggestionError(f"faq.sources ({patterns}) does not read {LEARNED}: add "
                                  f"'{LEARNED}' (or 'faq/*.yaml') to it, then accept again",
                                  file=typed_path(bot.file), path="faq.sources")
        if faq:
            load_passages(sources, faq)


def _entry(item: Any, where: str) -> dict[str, Any]:
    _known(item, "entry", ENTRY_KEYS, where)
    entry: dict[str, Any] = {"id": _text(item, "entry", "id", where),
                             "question": _text(item, "entry", "question", where),
                             "answer": _text(item, "entry", "answer", where)}
    if not NAME.fullmatch(entry["id"]):
        raise _error(item, "entry", "id", "must be letters, digits, '_' or '-'", where)
    if item.get("alternatives"):
        entry["alternatives"] = _strings(item, "entry", "alternatives", where)
    if item.get("category"):
        entry["category"] = _text(item, "entry", "category", where)
    return entry


def _intent(item: Any, where: str) -> dict[str, Any]:
    _known(item, "intent", INTENT_KEYS, where)
    intent: dict[str, Any] = {"name": _text(item, "intent", "name", where),
                              "faq": _text(item, "intent", "faq", where)}
    if not NAME.fullmatch(intent["name"]):
        raise _error(item, "intent", "name", "must be letters, digits, '_' or '-'", where)
    for key in ("title", "description"):
        if item.get(key):
            intent[key] = _text(item, "intent", key, where)
    intent["examples"] = _strings(item, "intent", "examples", where)
    return intent


def _known(item: Any, key: str, allowed: set[str], where: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise _error(item, key, unknown[0], f"unknown key; valid keys are: "
                     f"{', '.join(sorted(allowed))}", where)


def _text(item: Any, key: str, name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _error(item, key, name, "must be a non-empty string", where)
    return value.strip()


def _strings(item: Any, key: str, name: str, where: str) -> list[str]:
    value = item.get(name)
    if not (isinstance(value, list) and value
            and all(isinstance(v, str) and v.strip() for v in value)):
        raise _error(item, key, name, "must be a non-empty list of non-empty strings", where)
    return [v.strip() for v in value]


def _error(item: Any, key: str, name: str, reason: str, where: str) -> SuggestionError:
    line = getattr(item, "key_lines", {}).get(name, getattr(item, "line", None))
    return SuggestionError(reason, file=where, path=f"{key}.{name}", line=line)


def describe(accepted: Sequence[Accepted]) -> list[str]:
    """One line per accepted suggestion, after a warning for each private text forced in."""
    return [line for a in accepted for line in (
        *(f"warning: accepted with --force: {w}" for w in a.warnings),
        f"accepted {a.id} -> {a.file}")]

