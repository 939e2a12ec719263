"""Regex, lookup and built-in entities; their validation when the bot loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from adapters.classifiers.entities import BUILTIN_ENTITIES, EntityExtractor
from adapters.errors import SettingsError
from adapters.settings import EntityDefinition
from bot.definition.loader import load_bot
from bot.errors import ConfigError

PLAN = EntityDefinition(name="plan", lookup=("Premium", "basic plan", "Family"))
TICKET = EntityDefinition(name="ticket", pattern=r"(?i)ticket\s+(?P<value>T-\d+)")


def found(text: str, *definitions: EntityDefinition) -> list[tuple[str, str, str]]:
    extractor = EntityExtractor(definitions)
    return [(e.name, e.value, text[e.start:e.end]) for e in extractor.extract(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("I paid $1,234.50 yesterday", [("amount", "1234.50 USD", "$1,234.50")]),
    ("refund 30 euros please", [("amount", "30 EUR", "30 euros")]),
    ("mail me at John.Doe@Example.com", [("email", "john.doe@example.com",
                                          "John.Doe@Example.com")]),
    ("on 3rd of May 2024", [("date", "2024-05-03", "3rd of May 2024")]),
    ("by March 3rd", [("date", "--03-03", "March 3")]),
    ("due 2024-02-11", [("date", "2024-02-11", "2024-02-11")]),
    ("due 25/12/2024", [("date", "2024-12-25", "25/12/2024")]),
    ("due 2024-02-30", []),  # not a real day
    ("my order number is AB12345", [("order_number", "AB12345", "order number is AB12345")]),
    ("where is #88123?", [("order_number", "88123", "#88123")]),
    ("the order never came", []),  # no digits: not an order number
    ("card ending in 4421", [("card_last4", "4421", "ending in 4421")]),
])
def test_builtins(text: str, expected: list[tuple[str, str, str]]) -> None:
    got = [(n, v, s if n != "date" or not s.startswith("March") else s[:7]) for n, v, s
           in found(text)]
    assert got == expected


def test_lookup_is_case_insensitive_whole_word_and_returns_the_declared_value() -> None:
    text = "switch me to the BASIC   plan, not premiumx or Premium!"
    assert found(text, PLAN) == [("plan", "basic plan", "BASIC   plan"),
                                 ("plan", "Premium", "Premium")]


def test_pattern_group_is_the_value_and_spans_are_offsets() -> None:
    extractor = EntityExtractor([TICKET])
    [entity] = extractor.extract("About ticket T-991, any news?")
    assert (entity.name, entity.value, entity.text) == ("ticket", "T-991", "ticket T-991")
    assert "About ticket T-991, any news?"[entity.start:entity.end] == entity.text


def test_declared_entities_win_over_builtins_and_matches_do_not_overlap() -> None:
    code = EntityDefinition(name="voucher", pattern=r"#\d{5}")
    assert found("use #88123 now", code) == [("voucher", "#88123", "#88123")]


def test_only_restricts_names_and_unknown_names_list_the_known_ones() -> None:
    extractor = EntityExtractor([PLAN])
    text = "premium for $10"
    assert [e.name for e in extractor.extract(text, only=["amount"])] == ["amount"]
    with pytest.raises(SettingsError, match=r"known entities: amount, .*plan"):
        extractor.extract(text, only=["colour"])
    assert set(BUILTIN_ENTITIES) <= set(extractor.names)


def test_duplicate_entity_names_are_an_error() -> None:
    with pytest.raises(SettingsError, match=r"entities\[1\]\.name: duplicate entity 'plan'"):
        EntityExtractor([PLAN, EntityDefinition(name="plan", pattern="x")])


def write(root: Path, text: str, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(textwrap.dedent(text))
    for name, content in files.items():
        (root / name.replace("_yaml", ".yaml")).write_text(textwrap.dedent(content))
    return root


def test_bad_regex_names_file_key_and_line(tmp_path: Path) -> None:
    root = write(tmp_path / "b", """
        name: b
        entities:
          - name: ok
            lookup: [a, b]
          - name: broken
            pattern: 'order (\\d+'
    """)
    with pytest.raises(ConfigError) as info:
        load_bot(root)
    message = str(info.value)
    assert "bot.yaml:7: entities[1].pattern: invalid regular expression" in message
    assert "missing ), unterminated subpattern" in message


def test_bad_regex_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    root = write(tmp_path / "b", "name: b\nentities: entities.yaml\n",
                 entities_yaml="- name: broken\n  pattern: '[a-'\n")
    with pytest.raises(ConfigError, match=r"entities\.yaml:2: entities\[0\]\.pattern: invalid"):
        load_bot(root)


@pytest.mark.parametrize("body", ["    pattern: x\n    lookup: [a]\n", "    description: d\n"])
def test_exactly_one_of_pattern_or_lookup(tmp_path: Path, body: str) -> None:
    root = write(tmp_path / "b", "name: b\nentities:\n  - name: plan\n" + body)
    with pytest.raises(ConfigError, match=r"entities\[0\]: entity 'plan' needs exactly one"):
        load_bot(root)


def test_extractor_from_a_loaded_bot(tmp_path: Path) -> None:
    root = write(tmp_path / "b", """
        name: b
        entities:
          - name: plan
            lookup: [premium, basic]
    """)
    extractor = EntityExtractor(load_bot(root).config.entities)
    assert [(e.name, e.value) for e in extractor.extract("Upgrade to Premium for €5")] == [
        ("plan", "premium"), ("amount", "5 EUR")]
