"""What the team decided about each suggestion, read from the bot's own files.

``suggestions/accepted.json`` records each accepted suggestion, but a suggestion counts as
accepted only while what it merged is still in the bot: the entry in ``faq/learned.yaml``
(``faq-<id>``), an ``extends`` item for the entry (``alt-<entry>``), the intent in the
intents file (``intent-<name>``). A rollback, ``--unaccept`` or a hand edit that removes it
makes the suggestion pending again, so accepting, rejecting and rolling back never disagree.
``suggestions/rejected.json`` lists the suggestions the team turned down: ``bot suggest``
does not suggest them again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.definition.config import typed_path
from bot.errors import ConfigError
from retrieval.artifacts import write_text_atomic

FOLDER = "suggestions"
ACCEPTED = "accepted.json"
REJECTED = "rejected.json"
LEARNED = Path("faq") / "learned.yaml"
PREFIXES = {"faq-": "faq", "alt-": "alternatives", "intent-": "intent"}


def item_of(suggestion_id: str) -> tuple[str, str]:
    """``(kind, key)`` a suggestion id names: ``faq-card`` -> ``("faq", "card")``; more
    wordings accepted again for one entry are ``alt-<entry>-2``, ``-3``..."""
    for prefix, kind in PREFIXES.items():
        if suggestion_id.startswith(prefix):
            return kind, suggestion_id[len(prefix):]
    return "", suggestion_id


def _records(bot_root: Path, name: str, key: str) -> list[dict[str, Any]]:
    path = bot_root / FOLDER / name
    if not path.exists():
        return []
    try:
        items = json.loads(path.read_text(encoding="utf-8"))[key]
        return [dict(item, id=str(item["id"])) for item in items]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot be read ({exc}); it lists the {key} suggestions "
                          f'({{"{key}": [{{"id": ...}}]}})', file=typed_path(path)) from exc


def yaml_items(path: Path) -> list[dict[str, Any]]:
    """The mappings of a YAML list file (none when it is missing or unreadable)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    return [item for item in data or [] if isinstance(item, dict)] \
        if isinstance(data, list) else []


def intents_file(bot_root: Path) -> Path | None:
    """The file ``intents:`` names in bot.yaml, if it names one."""
    try:
        raw = yaml.safe_load((bot_root / "bot.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    section = raw.get("intents") if isinstance(raw, dict) else None
    return bot_root / section if isinstance(section, str) else None


def merged(bot_root: Path) -> dict[str, set[str]]:
    """What the bot's files hold of learned items: entry ids, extended entries, intents."""
    learned = yaml_items(bot_root / LEARNED)
    intents = intents_file(bot_root)
    return {"faq": {str(i["id"]) for i in learned if "id" in i},
            "alternatives": {str(i["extends"]) for i in learned if "extends" in i},
            "intent": {str(i["name"]) for i in (yaml_items(intents) if intents else [])
                       if "name" in i}}


def _key(held: dict[str, set[str]], suggestion_id: str) -> tuple[str, str]:
    """The kind and the key in the bot of a suggestion's item: ``alt-<entry>-2`` extends
    ``<entry>`` (unless an entry is called ``<entry>-2``)."""
    kind, key = item_of(suggestion_id)
    base, _, n = key.rpartition("-")
    if kind == "alternatives" and key not in held[kind] and n.isdigit():
        key = base
    return kind, key


def _in(held: dict[str, set[str]], suggestion_id: str) -> bool:
    kind, key = _key(held, suggestion_id)
    return kind in held and key in held[kind]


def accepted_records(bot_root: Path) -> list[dict[str, Any]]:
    """The accepted suggestions whose merged item is still in the bot."""
    held = merged(bot_root)
    return [r for r in _records(bot_root, ACCEPTED, "accepted") if _in(held, r["id"])]


def accepted_ids(bot_root: Path) -> set[str]:
    return {r["id"] for r in accepted_records(bot_root)}


def learned_sources(bot_root: Path) -> dict[str, str]:
    """Entry id (``intent:<name>`` for an intent) -> the accepted suggestion it came from."""
    held = merged(bot_root)
    found: dict[str, str] = {}
    for record in _records(bot_root, ACCEPTED, "accepted"):
        kind, key = _key(held, record["id"])
        if kind in held and key in held[kind]:
            found[f"intent:{key}" if kind == "intent" else key] = record["id"]
    return found


def accepted_text(bot_root: Path, ids: list[str], targets: dict[str, str]) -> str:
    """``accepted.json``: the records still in the bot, and ``ids`` added."""
    kept = [r for r in accepted_records(bot_root) if r["id"] not in ids]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    kept += [{"id": i, "accepted_at": now, "into": targets[i]} for i in ids]
    return json.dumps({"accepted": kept}, indent=2, ensure_ascii=False) + "\n"


def rejected_ids(bot_root: Path) -> set[str]:
    return {r["id"] for r in _records(bot_root, REJECTED, "rejected")}


def record_rejection(bot_root: Path, suggestion_id: str) -> None:
    """Add ``suggestion_id`` to ``rejected.json``."""
    items = [r for r in _records(bot_root, REJECTED, "rejected") if r["id"] != suggestion_id]
    items.append({"id": suggestion_id,
                  "rejected_at": datetime.now(UTC).isoformat(timespec="seconds")})
    write_text_atomic(bot_root / FOLDER / REJECTED,
                      json.dumps({"rejected": items}, indent=2, ensure_ascii=False) + "\n")
