"""``bot suggest DIR --unaccept ID`` and ``--reject ID``: take a suggestion back out of the
bot, or turn one down.

Accepting appends each suggestion to its file as a block that starts with the comment
``# <id>: from N past conversations``; un-accepting removes that block (the suggestion is
pending again, its file as it was), and refuses when the block was edited away, naming the
file to edit by hand. Rejecting records the id in ``suggestions/rejected.json`` and removes
its file: ``bot suggest`` does not suggest it again.
"""

from __future__ import annotations

from pathlib import Path

from bot.definition.config import typed_path
from bot.definition.loader import load_bot
from bot.errors import BotError
from bot.learning import decisions
from bot.learning.suggestions import SuggestionError, folder, pending, replace_files


def _file_of(bot_root: Path, suggestion_id: str) -> Path:
    kind, _ = decisions.item_of(suggestion_id)
    path = decisions.intents_file(bot_root) if kind == "intent" else bot_root / decisions.LEARNED
    if path is None:
        raise SuggestionError("bot.yaml names no intents file", file=typed_path(bot_root))
    return path


def without_block(text: str, suggestion_id: str) -> str | None:
    """``text`` without the block accepting ``suggestion_id`` appended (its comment line and
    the one list item under it); None when it is not there."""
    lines = text.splitlines(keepends=True)
    marker = f"# {suggestion_id}: from "
    start = next((n for n, line in enumerate(lines) if line.startswith(marker)), None)
    if start is None or start + 1 >= len(lines) or not lines[start + 1].startswith("- "):
        return None
    end = start + 2
    while end < len(lines):  # the item's indented lines, blank lines inside it included
        following = next((line for line in lines[end:] if line.strip()), "")
        if not (lines[end].startswith((" ", "\t")) or
                (not lines[end].strip() and following.startswith((" ", "\t")))):
            break
        end += 1
    while start > 0 and not lines[start - 1].strip():  # the blank line accepting added
        start -= 1
    return "".join(lines[:start] + lines[end:])


def unaccept(bot_root: Path, suggestion_id: str) -> str:
    """Remove what accepting ``suggestion_id`` merged; the file changed (as shown)."""
    if suggestion_id not in decisions.accepted_ids(bot_root):
        state = "pending" if suggestion_id in pending(bot_root) else "not accepted"
        raise SuggestionError(f"{suggestion_id} is {state}: only an accepted suggestion can be "
                              "taken back", file=typed_path(folder(bot_root)))
    kind, key = decisions.item_of(suggestion_id)
    if kind == "faq":
        linked = [i for i in decisions.accepted_ids(bot_root)
                  if decisions.item_of(i)[0] == "intent" and _links(bot_root, i, key)]
        if linked:
            raise SuggestionError(f"{', '.join(sorted(linked))} answers with this entry: "
                                  "un-accept it first", file=typed_path(folder(bot_root)))
    path = _file_of(bot_root, suggestion_id)
    before = path.read_text(encoding="utf-8")
    after = without_block(before, suggestion_id)
    if after is None:
        raise SuggestionError(f"{suggestion_id}'s block (starting '# {suggestion_id}: from "
                              "...') is not in this file any more: remove its item by hand",
                              file=typed_path(path))
    replace_files({path: after})
    try:
        load_bot(bot_root)
        if suggestion_id in decisions.accepted_ids(bot_root):
            raise SuggestionError(f"{key!r} is still in the file after its block was removed "
                                  "(written twice?): remove it by hand", file=typed_path(path))
    except BotError:
        replace_files({path: before})
        raise
    return typed_path(path)


def _links(bot_root: Path, intent_id: str, entry: str) -> bool:
    intents = decisions.intents_file(bot_root)
    name = decisions.item_of(intent_id)[1]
    return intents is not None and any(
        str(item.get("name")) == name and str(item.get("faq")) == entry
        for item in decisions.yaml_items(intents))


def reject(bot_root: Path, suggestion_id: str) -> str:
    """Turn down a pending suggestion; the file removed (as shown)."""
    if suggestion_id in decisions.accepted_ids(bot_root):
        raise SuggestionError(f"{suggestion_id} is accepted: take it back with --unaccept "
                              "first", file=typed_path(folder(bot_root)))
    path = folder(bot_root) / f"{suggestion_id}.yaml"
    if suggestion_id not in pending(bot_root):
        raise SuggestionError(f"no pending suggestion {suggestion_id!r}",
                              file=typed_path(folder(bot_root)))
    decisions.record_rejection(bot_root, suggestion_id)
    replace_files({path: None})
    return typed_path(path)
