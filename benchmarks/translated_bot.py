"""A copy of acme_bank whose FAQ carries translations (``benchmarks/data/acme_translations.yaml``).

The copy's YAML entries get ``question: {en: ..., es: ..., ...}`` and ``answer: {en: ...,
es: ..., ...}`` (``retrieval/translations.py``); a file of another format that holds translated
entries (``fees.csv``, ``security.md``) is rewritten as a YAML file of the same entries (same
ids, questions, alternatives, categories and shown text) with their translations, and the
original removed from the copy. The example bot itself is never edited. Before anything is
written, every translated answer must hold the same numbers as the English one (amounts,
percentages, phone numbers, codes: :func:`number_mismatches`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot.definition.loader import load_bot
from retrieval.knowledge import load_passages
from retrieval.passages import Passage

TRANSLATIONS = Path(__file__).parent / "data" / "acme_translations.yaml"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")  # 5, £1,000, 3.5%, 0800 123 4567 (three numbers)
Translations = dict[str, dict[str, dict[str, str]]]  # entry id -> field -> code -> text


def load_translations(path: Path = TRANSLATIONS) -> Translations:
    """Entry id -> ``{"question": {code: text}, "answer": {code: text}}``."""
    table: Translations = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entry_id, fields in table.items():
        if set(fields) != {"question", "answer"} or set(fields["question"]) != \
                set(fields["answer"]):
            raise ValueError(f"{path.name}: {entry_id} needs question and answer in the same "
                             "languages")
    return table


def number_mismatches(passages: dict[str, Passage], table: Translations) -> list[str]:
    """Each translated answer whose numbers differ from its English answer's (or whose entry
    the bot lacks), as ``"id code: ..."`` lines; empty when all agree."""
    problems: list[str] = []
    for entry_id, fields in table.items():
        passage = passages.get(entry_id)
        if passage is None or passage.question is None:
            problems.append(f"{entry_id}: no such question-and-answer entry in the bot")
            continue
        english = Counter(NUMBER.findall(passage.text))
        for code, text in fields["answer"].items():
            found = Counter(NUMBER.findall(text))
            if found != english:
                problems.append(f"{entry_id} {code}: missing {sorted((english - found).elements())}"
                                f", extra {sorted((found - english).elements())}")
    return problems


def translate_copy(bot_dir: Path, table: Translations) -> dict[str, Any]:
    """Merge ``table`` into the FAQ of the bot copy at ``bot_dir``; what was done."""
    bot = load_bot(bot_dir)
    faq = bot.config.faq
    assert faq is not None  # acme_bank has an FAQ
    by_file = {source.path: load_passages([source], faq) for source in bot.faq_sources()}
    passages = {p.id: p for found in by_file.values() for p in found}
    problems = number_mismatches(passages, table)
    if problems:
        raise ValueError("translations whose numbers differ from the English answer:\n  "
                         + "\n  ".join(problems))
    merged, rewritten = 0, []
    for path, found in by_file.items():
        if not any(p.id in table for p in found):
            continue
        if path.suffix in (".yaml", ".yml"):
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
            for entry in entries:
                if isinstance(entry, dict) and entry.get("id") in table:
                    _merge(entry, table[entry["id"]])
                    merged += 1
        else:  # CSV, Markdown: the same entries as YAML, beside the other FAQ files
            entries = [_entry(p, table.get(p.id)) for p in found]
            merged += sum(p.id in table for p in found)
            rewritten.append(str(path.relative_to(bot_dir)))
            path.unlink()
            path = path.with_name(f"{path.stem}-{path.suffix.lstrip('.')}.yaml")
        path.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False,
                                       width=100_000), encoding="utf-8")
    if rewritten:
        _drop_empty_patterns(bot_dir)
    languages = sorted({c for fields in table.values() for c in fields["answer"]})
    return {"entries_translated": merged, "languages": languages,
            "rewritten_as_yaml": rewritten,
            "untranslated": sorted(i for i in passages if i not in table)}


def _drop_empty_patterns(bot_dir: Path) -> None:
    """Drop the ``faq.sources`` patterns that no longer match a file (``faq/*.csv`` once the
    only CSV file became YAML)."""
    definition = bot_dir / "bot.yaml"
    config = yaml.safe_load(definition.read_text(encoding="utf-8"))
    config["faq"]["sources"] = [s for s in config["faq"]["sources"]
                                if (bot_dir / s).is_dir() or any(bot_dir.glob(s))]
    definition.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _merge(entry: dict[str, Any], fields: dict[str, dict[str, str]]) -> None:
    for key in ("question", "answer"):
        english = entry[key]
        if not isinstance(english, str):
            raise ValueError(f"{entry['id']}: {key} is already a mapping")
        entry[key] = {"en": english, **fields[key]}


def _entry(passage: Passage, fields: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    """A passage as the YAML entry that reads back as it, with ``fields``' translations."""
    if passage.question is None:  # free text ("About Acme Bank security")
        entry: dict[str, Any] = {"id": passage.id, "title": passage.title, "text": passage.text}
    else:
        entry = {"id": passage.id, "question": passage.question, "answer": passage.text}
        if passage.alternatives:
            entry["alternatives"] = list(passage.alternatives)
        if fields is not None:
            _merge(entry, fields)
    if passage.category:
        entry["category"] = passage.category
    return entry
