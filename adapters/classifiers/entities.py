"""Entity extraction: regex and lookup entities declared in YAML, plus a few built-ins.

Declared entities (``entities:`` in ``bot.yaml``) take precedence over built-ins; within each
tier longer matches win and matches never overlap. A declared ``pattern`` with a group named
``value`` (or any capture group) yields that group as the value; a ``lookup`` entity matches
its values case-insensitively on word boundaries and yields the value as written in the YAML.

Built-ins, usable by name without declaring them: ``email``, ``amount`` (value ``"12.50 USD"``),
``date`` (ISO ``2024-05-01``, or ``--05-01`` without a year), ``order_number`` and
``card_last4``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from adapters.errors import SettingsError
from adapters.settings import EntityDefinition

Normalizer = Callable[[re.Match[str]], str | None]


@dataclass(frozen=True)
class Entity:
    """One entity found in a message: ``text[start:end]`` is what matched."""

    name: str
    value: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Rule:
    name: str
    regex: re.Pattern[str]
    normalize: Normalizer
    declared: bool


def _whole(match: re.Match[str]) -> str | None:
    return match.group(0) or None


def _first_group(match: re.Match[str]) -> str | None:
    if "value" in match.re.groupindex and match.group("value"):
        return match.group("value")
    groups = [g for g in match.groups() if g]
    return groups[0] if groups else match.group(0) or None


# --- built-ins ------------------------------------------------------------------------------

_MONTHS = {m.lower()[:3]: i for i, m in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August", "September",
     "October", "November", "December"), start=1)}
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_ORD = r"(?:st|nd|rd|th)?"
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_CURRENCY_WORDS = {"usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
                   "eur": "EUR", "euro": "EUR", "euros": "EUR", "gbp": "GBP", "pound": "GBP",
                   "pounds": "GBP", "jpy": "JPY", "yen": "JPY", "chf": "CHF", "cad": "CAD",
                   "aud": "AUD"}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"


def _amount(match: re.Match[str]) -> str | None:
    number = (match.group("n1") or match.group("n2")).replace(",", "")
    if match.group("sym"):
        currency = _CURRENCY_SYMBOLS[match.group("sym")]
    else:
        currency = _CURRENCY_WORDS[match.group("word").lower()]
    return f"{number} {currency}"


def _iso_date(year: str | None, month: int, day: str) -> str | None:
    try:
        dt.date(int(year) if year else 2000, month, int(day))  # 2000: a leap year
    except ValueError:
        return None
    prefix = f"{int(year):04d}" if year else "-"
    return f"{prefix}-{month:02d}-{int(day):02d}"


def _date(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    if groups.get("iy"):
        return _iso_date(groups["iy"], int(groups["im"]), groups["id"])
    if groups.get("dm"):
        return _iso_date(groups["dy"], _MONTHS[groups["dm"].lower()[:3]], groups["dd"])
    if groups.get("mm"):
        return _iso_date(groups["my"], _MONTHS[groups["mm"].lower()[:3]], groups["md"])
    first, second, year = int(groups["a"]), int(groups["b"]), groups["y"]
    if len(year) == 2:
        year = f"20{year}"
    if first > 12 >= second:  # day/month, unambiguous
        return _iso_date(year, second, str(first))
    if second > 12 >= first:  # month/day, unambiguous
        return _iso_date(year, first, str(second))
    return match.group(0) if first <= 12 and second <= 12 else None


def _needs_digit(match: re.Match[str]) -> str | None:
    value = _first_group(match)
    return value if value and any(c.isdigit() for c in value) else None


_BUILTIN_PATTERNS: dict[str, tuple[str, Normalizer]] = {
    "email": (r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
              lambda m: m.group(0).lower()),
    "amount": (
        rf"(?:(?P<sym>[$€£¥])\s?(?P<n1>{_NUMBER})\b"
        rf"|\b(?P<n2>{_NUMBER})\s?(?P<word>{'|'.join(_CURRENCY_WORDS)})\b)",
        _amount,
    ),
    "date": (
        r"\b(?:(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
        rf"|(?P<dd>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<dm>{_MONTH})(?:,?\s+(?P<dy>\d{{4}}))?"
        rf"|(?P<mm>{_MONTH})\s+(?P<md>\d{{1,2}}){_ORD}(?:,?\s+(?P<my>\d{{4}}))?"
        r"|(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4}|\d{2}))(?![\w/])",
        _date,
    ),
    "order_number": (
        r"(?:\border(?:\s+(?:no\.?|number|num|id|ref(?:erence)?))?\s*(?:is\s+)?[#:]?\s*"
        r"(?P<value>[A-Z0-9][A-Z0-9-]{3,19})\b|(?<!\w)#(?P<hash>\d{4,12})\b)",
        _needs_digit,
    ),
    "card_last4": (
        r"\b(?:(?:ending|ends)\s+(?:in|with)|last\s+(?:4|four)(?:\s+digits)?"
        r"(?:\s+(?:are|is|of\s+\w+))?\s*:?)\s*(?P<value>\d{4})\b",
        _first_group,
    ),
}
BUILTIN_ENTITIES = tuple(_BUILTIN_PATTERNS)


def _builtin_rules() -> list[_Rule]:
    return [_Rule(name, re.compile(pattern, re.IGNORECASE), normalize, declared=False)
            for name, (pattern, normalize) in _BUILTIN_PATTERNS.items()]


def _lookup_rule(definition: EntityDefinition) -> _Rule:
    canonical = {" ".join(v.lower().split()): v for v in definition.lookup if v.strip()}
    alternatives = sorted(canonical, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(word) for word in value.split())
                    for value in alternatives)
    regex = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)

    def normalize(match: re.Match[str]) -> str | None:
        return canonical.get(" ".join(match.group(0).lower().split()))

    return _Rule(definition.name, regex, normalize, declared=True)


def _declared_rule(definition: EntityDefinition) -> _Rule:
    if definition.lookup:
        return _lookup_rule(definition)
    assert definition.pattern is not None  # EntityDefinition guarantees one of the two
    return _Rule(definition.name, re.compile(definition.pattern), _first_group, declared=True)


class EntityExtractor:
    """Finds declared and built-in entities in a message."""

    def __init__(self, definitions: Sequence[EntityDefinition] = (), *,
                 builtins: bool = True) -> None:
        seen: set[str] = set()
        for i, definition in enumerate(definitions):
            if definition.name in seen:
                raise SettingsError(f"duplicate entity {definition.name!r}",
                                  path=f"entities[{i}].name")
            seen.add(definition.name)
        self._rules = [_declared_rule(d) for d in definitions]
        if builtins:
            self._rules += [r for r in _builtin_rules() if r.name not in seen]

    @property
    def names(self) -> tuple[str, ...]:
        """Every entity name this extractor can find."""
        return tuple(rule.name for rule in self._rules)

    def extract(self, text: str, *, only: Iterable[str] | None = None) -> list[Entity]:
        """Entities in ``text``, in order of position; ``only`` restricts them to some names."""
        rules = self._rules
        if only is not None:
            wanted = set(only)
            unknown = sorted(wanted.difference(self.names))
            if unknown:
                raise SettingsError(f"unknown entity {unknown[0]!r}; known entities: "
                                  + ", ".join(sorted(self.names)))
            rules = [r for r in rules if r.name in wanted]
        chosen: list[Entity] = []
        for declared in (True, False):
            candidates = [e for r in rules if r.declared is declared for e in _matches(r, text)]
            candidates.sort(key=lambda e: (-(e.end - e.start), e.start))
            for entity in candidates:
                if all(entity.end <= c.start or entity.start >= c.end for c in chosen):
                    chosen.append(entity)
        return sorted(chosen, key=lambda e: (e.start, e.name))


def _matches(rule: _Rule, text: str) -> Iterable[Entity]:
    for match in rule.regex.finditer(text):
        if match.end() == match.start():
            continue
        value = rule.normalize(match)
        if value:
            yield Entity(rule.name, value, match.start(), match.end(), match.group(0))
