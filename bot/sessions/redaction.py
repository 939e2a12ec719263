"""Find and mask personal data: card numbers (Luhn), IBANs (mod 97), emails, phone numbers.

:func:`redact` replaces each finding with ``[CARD]``, ``[IBAN]``, ``[EMAIL]`` or ``[PHONE]``.
:class:`RedactingStore` wraps a session store so stored transcripts and events are redacted
while the router still sees the current message as typed (it runs before the save).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.sessions.store import Session, SessionStore

_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{6,}\d(?![\w-])")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_IBAN_LENGTHS = range(15, 35)


@dataclass(frozen=True)
class Finding:
    """One piece of personal data in a text."""

    kind: str  # "card", "iban", "email" or "phone"
    start: int
    end: int
    value: str


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether ``text`` (spaces allowed) is an IBAN with a valid mod-97 check."""
    iban = text.replace(" ", "").upper()
    if len(iban) not in _IBAN_LENGTHS or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_prefix(candidate: str) -> str | None:
    """The longest valid IBAN that ``candidate`` starts with, dropping trailing words."""
    words = candidate.split(" ")
    while words:
        text = " ".join(words)
        if iban_ok(text):
            return text
        words.pop()
    return None


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _phone(match: re.Match[str]) -> bool:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    return 8 <= len(digits) <= 15 and not _DATE.fullmatch(text.strip())


def find_pii(text: str) -> list[Finding]:
    """Personal data in ``text``, left to right, without overlaps."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if all(end <= s or start >= e for s, e in taken):
            taken.append((start, end))
            found.append(Finding(kind, start, end, text[start:end]))

    for match in _EMAIL.finditer(text):
        add("email", *match.span())
    for match in _IBAN.finditer(text):
        if (iban := _iban_prefix(match.group())) is not None:
            add("iban", match.start(), match.start() + len(iban))
    for match in _CARD.finditer(text):
        if _card(match):
            add("card", *match.span())
    for match in _PHONE.finditer(text):
        if _phone(match):
            add("phone", *match.span())
    return sorted(found, key=lambda f: f.start)


def redact(text: str, *, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with personal data masked; values in ``keep`` stay as they are."""
    out: list[str] = []
    last = 0
    for finding in find_pii(text):
        if normalise(finding.value) in keep:
            continue
        out.append(text[last:finding.start])
        out.append(f"[{finding.kind.upper()}]")
        last = finding.end
    out.append(text[last:])
    return "".join(out)


def normalise(value: str) -> str:
    """A finding's value compared without spaces, separators or case."""
    return re.sub(r"[\s().-]", "", value).lower()


def pii_values(*texts: str) -> frozenset[str]:
    """The normalised personal-data values in ``texts``."""
    return frozenset(normalise(f.value) for text in texts for f in find_pii(text))


def redact_data(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class RedactingStore:
    """A :class:`SessionStore` that masks personal data in saved history and in events.

    Slots are kept as they are (forms need the values); only transcripts are masked.
    """

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def get(self, key: str, *, channel: str, sender: str) -> Session:
        return await self.inner.get(key, channel=channel, sender=sender)

    async def save(self, session: Session) -> None:
        history = [{**turn, "text": redact(turn["text"])} if isinstance(turn.get("text"), str)
                   else turn for turn in session.history]
        stored = dataclasses.replace(session, history=history)
        await self.inner.save(stored)
        session.updated_at = stored.updated_at

    async def log_event(self, key: str, kind: str, data: dict[str, Any]) -> None:
        await self.inner.log_event(key, kind, redact_data(data))

    def lock(self, key: str) -> Any:
        return self.inner.lock(key)

    def iter_events(self, *, key: str | None = None,
                    since: float = 0.0) -> AsyncIterator[dict[str, Any]]:
        return self.inner.iter_events(key=key, since=since)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:  # store-specific extras (SQLite's ``events``)
        return getattr(self.inner, name)
