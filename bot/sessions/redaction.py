"""Find and mask personal data: card numbers (Luhn), IBANs (mod 97), emails, phone numbers,
dates of birth (whole dates at least ``MIN_AGE_YEARS`` back, since 1900); and secrets a user
types: the bot's own configured secrets and common token shapes (API keys, JWTs, bot tokens).

:func:`redact` replaces each finding with ``[CARD]``, ``[IBAN]``, ``[EMAIL]``, ``[PHONE]``,
``[DATE_OF_BIRTH]`` or ``[SECRET]``.
:class:`RedactingStore` wraps a session store so stored transcripts and events are redacted
while the router still sees the current message as typed (it runs before the save).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.sessions.store import Session, SessionStore

_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{6,}\d(?![\w-])")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_IBAN_LENGTHS = range(15, 35)
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_MONTH = r"(?P<month>" + "|".join(f"{m[:3]}(?:{m[3:]})?" for m in _MONTHS) + r")\.?"
_BIRTH_DATE = re.compile(  # a whole date whose year a living customer may be born in
    r"\b(?:(?P<iso_y>(?:19|20)\d\d)[-./](?P<iso_m>\d{1,2})[-./](?P<iso_d>\d{1,2})"
    r"|(?P<num_d>\d{1,2})[-./](?P<num_m>\d{1,2})[-./](?P<num_y>(?:19|20)\d\d)"
    rf"|(?P<txt_d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(?P<txt_y>(?:19|20)\d\d)"
    rf"|{_MONTH.replace('month', 'us_m')}\s+(?P<us_d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+"
    r"(?P<us_y>(?:19|20)\d\d))\b", re.IGNORECASE)
MIN_AGE_YEARS = 12
_TOKEN_SHAPES = re.compile("|".join((
    r"\bsk-[A-Za-z0-9_-]{16,}",  # API keys of LLM vendors
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API keys
    r"\b(?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{16,}",  # Stripe
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"\b\d{6,12}:[A-Za-z0-9_-]{30,}",  # Telegram bot tokens
    # any other run of 32+ token characters holding both letters and digits
    r"(?<![\w./-])(?=[\w.-]*\d)(?=[\w.-]*[A-Za-z])[A-Za-z0-9_.-]{32,}(?![\w.-])",
)))
MIN_SECRET_CHARS = 4  # shorter configured values are too likely to be ordinary words


@dataclass(frozen=True)
class Finding:
    """One piece of personal data in a text."""

    kind: str  # "card", "iban", "email", "phone" or "date_of_birth"
    start: int
    end: int
    value: str

    @property
    def key(self) -> str:
        """The value as compared with others: normalised (a date: ``YYYY-MM-DD``)."""
        return birth_date(self.value) or "" if self.kind == "date_of_birth" \
            else normalise(self.value)


def birth_date(text: str) -> str | None:
    """``text`` as an ISO date when it is a whole date a customer could be born on."""
    match = _BIRTH_DATE.fullmatch(text.strip())
    if match is None:
        return None
    groups = {k: v for k, v in match.groupdict().items() if v}
    year = int(next(v for k, v in groups.items() if k.endswith("_y")))
    day = int(next(v for k, v in groups.items() if k.endswith("_d")))
    month_text = next(v for k, v in groups.items() if k.endswith("_m") or k == "month")
    month = int(month_text) if month_text.isdigit() else \
        next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(month_text.lower()[:3]))
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return None
    latest = dt.date.today().year - MIN_AGE_YEARS
    return born.isoformat() if 1900 <= born.year <= latest else None


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


def find_pii(text: str, *, secrets: Iterable[str] | None = None,
             pii: bool = True) -> list[Finding]:
    """Personal data in ``text`` (unless ``pii`` is False) and, when ``secrets`` is given,
    secrets (those values, and token shapes), left to right, without overlaps."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if all(end <= s or start >= e for s, e in taken):
            taken.append((start, end))
            found.append(Finding(kind, start, end, text[start:end]))

    if secrets is not None:
        for value in sorted((v for v in secrets if len(v) >= MIN_SECRET_CHARS), key=len,
                            reverse=True):
            for match in re.finditer(re.escape(value), text):
                add("secret", *match.span())
        for match in _TOKEN_SHAPES.finditer(text):
            add("secret", *match.span())
    if not pii:
        return sorted(found, key=lambda f: f.start)
    for match in _EMAIL.finditer(text):
        add("email", *match.span())
    for match in _IBAN.finditer(text):
        if (iban := _iban_prefix(match.group())) is not None:
            add("iban", match.start(), match.start() + len(iban))
    for match in _CARD.finditer(text):
        if _card(match):
            add("card", *match.span())
    for match in _BIRTH_DATE.finditer(text):
        if birth_date(match.group()) is not None:
            add("date_of_birth", *match.span())
    for match in _PHONE.finditer(text):
        if _phone(match):
            add("phone", *match.span())
    return sorted(found, key=lambda f: f.start)


def redact(text: str, *, keep: frozenset[str] = frozenset(),
           secrets: Iterable[str] | None = None, pii: bool = True) -> str:
    """``text`` with personal data (unless ``pii`` is False) and, when ``secrets`` is given,
    secrets masked (see :func:`find_pii`); personal data in ``keep`` stays as it is."""
    out: list[str] = []
    last = 0
    for finding in find_pii(text, secrets=secrets, pii=pii):
        if finding.kind != "secret" and finding.key in keep:
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
    return frozenset(f.key for text in texts for f in find_pii(text))


OUTBOX_KEY = "outbox"  # bot.dialogue.handoff keeps queued agent messages there
OWN_PII_KEY = "own_pii"  # digests of the personal data the user gave (history is masked)
OWN_PII_LIMIT = 100


def _digest(secret: bytes, salt: str, key: str) -> str:
    return hmac.new(secret, f"{salt}:{key}".encode(), hashlib.sha256).hexdigest()[:32]


def remember_own_pii(session: Session, secret: bytes) -> None:
    """Keep keyed digests (HMAC under ``secret``, salted per session) of the personal data
    in the user's turns, so a reply may show the user their own details after the
    transcript is masked, and the stored digests reveal nothing without the secret."""
    own = session.state.setdefault(OWN_PII_KEY, {"salt": secrets.token_hex(8), "digests": []})
    digests: list[str] = own["digests"]
    for turn in session.history:
        if turn.get("role") == "user" and isinstance(turn.get("text"), str):
            for finding in find_pii(turn["text"]):
                digest = _digest(secret, own["salt"], finding.key)
                if digest not in digests:
                    digests.append(digest)
    del digests[:-OWN_PII_LIMIT]


def redact_data(value: Any, mask: Callable[[str], str] = redact) -> Any:
    """``mask`` (by default :func:`redact`) every string inside a JSON-like value."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: redact_data(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, mask) for v in value]
    return value


def _redacted_texts(items: list[dict[str, Any]],
                    mask: Callable[[str], str]) -> list[dict[str, Any]]:
    return [{**item, "text": mask(item["text"])} if isinstance(item.get("text"), str)
            else item for item in items]


class RedactingStore:
    """A :class:`SessionStore` that masks secrets and (unless ``pii`` is False) personal
    data in saved history, queued agent messages and events.

    Slots are kept as they are (forms need the values); only transcripts are masked, and the
    user's own values are remembered as keyed digests (:meth:`user_gave`).
    """

    def __init__(self, inner: SessionStore, *, secret: str = "", secrets: Iterable[str] = (),
                 pii: bool = True) -> None:
        self.inner = inner
        self.secret = secret.encode("utf-8")  # keys the user's own-data digests
        self.pii = pii
        known = tuple(secrets)
        self.mask: Callable[[str], str] = lambda text: redact(text, secrets=known, pii=pii)

    def user_gave(self, session: Session, key: str) -> bool:
        """Whether the user of ``session`` gave the personal-data value ``key`` (a finding's
        :attr:`Finding.key`) in an earlier turn."""
        own = session.state.get(OWN_PII_KEY)
        return isinstance(own, dict) and \
            _digest(self.secret, str(own.get("salt")), key) in own.get("digests", ())

    async def get(self, key: str, *, channel: str, sender: str) -> Session:
        return await self.inner.get(key, channel=channel, sender=sender)

    async def save(self, session: Session) -> None:
        if self.pii:
            remember_own_pii(session, self.secret)
        state = dict(session.state)
        if isinstance(state.get(OUTBOX_KEY), list):  # queued agent messages, as the history
            state[OUTBOX_KEY] = _redacted_texts(state[OUTBOX_KEY], self.mask)
        stored = dataclasses.replace(session, history=_redacted_texts(session.history,
                                                                      self.mask), state=state)
        await self.inner.save(stored)
        session.updated_at = stored.updated_at

    async def log_event(self, key: str, kind: str, data: dict[str, Any]) -> None:
        await self.inner.log_event(key, kind, redact_data(data, self.mask))

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
