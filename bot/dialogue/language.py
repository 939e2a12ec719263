"""The customer's language: identified per message, kept in the session, told in the reply.

With ``language:`` written as a mapping (``adapters.settings.LanguageSettings``), each
message long and clear enough is identified (``adapters/classifiers/language.py``) and its
language kept in ``session.state["language"]``; a short or unclear one ("ok", "thanks")
keeps the session's language so far, the bot's own at first. A reply that quotes FAQ entries
written in the customer's language too (``retrieval/translations.py``), or an intent's canned
response citing the entry it states (its ``faq:`` link), is given in it (:func:`translated`),
and so is a line of the bot's own that its ``translations`` give (``catalog.py``); any other
reply the bot wrote in its own language to a customer writing in another ends with one line
in the customer's language saying so (the table ``data/language_notes.yaml``); a human
agent's message never does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from adapters.classifiers.language import LanguageIdentifier
from adapters.settings import LanguageSettings
from bot.sessions.store import Session
from foundation.messages import BotReply
from retrieval.passages import Passage

LANGUAGE_KEY = "language"  # session.state: the customer's language (an ISO 639-1 code)
NOTES_FILE = Path(__file__).parent / "data" / "language_notes.yaml"
NO_NOTE_KINDS = frozenset({"agent"})  # replies a person wrote


@functools.cache
def notes() -> dict[str, dict[str, Any]]:
    """The note table: customer language -> ``{"note": ..., "names": {code: name}}``."""
    with NOTES_FILE.open(encoding="utf-8") as f:
        table: dict[str, dict[str, Any]] = yaml.safe_load(f)
    return table


def note_for(customer: str, answered_in: str) -> str | None:
    """The line telling a ``customer`` language speaker the answer is in ``answered_in``;
    None when they are the same or the table lacks either language."""
    entry = notes().get(customer)
    if customer == answered_in or entry is None or answered_in not in entry["names"]:
        return None
    return str(entry["note"]).format(language=entry["names"][answered_in])


class CustomerLanguage:
    """Identifies each message's language and keeps it in the session."""

    def __init__(self, settings: LanguageSettings,
                 identifier: LanguageIdentifier | None = None) -> None:
        self.settings = settings
        self.identifier = identifier or LanguageIdentifier(settings)

    def load(self) -> CustomerLanguage:
        self.identifier.load()
        return self

    def of_turn(self, session: Session, text: str) -> str:
        """The customer's language for this message (remembered in ``session``)."""
        found = self.identifier.identify(text)
        if found is not None:
            session.state[LANGUAGE_KEY] = found
        return str(session.state.get(LANGUAGE_KEY) or self.settings.code)

    def note(self, customer: str, kind: str) -> str | None:
        """The line a reply of ``kind`` ends with for a ``customer`` language speaker."""
        if kind in NO_NOTE_KINDS:
            return None
        return note_for(customer, self.settings.code)


def translated(reply: BotReply, customer: str,
               passage: Callable[[str], Passage | None]) -> BotReply | None:
    """``reply`` in the ``customer``'s language when it quotes FAQ answers as written (one
    after another, in the order cited) and each has a translation into it; an intent's canned
    response that cites the one entry it states (the answer decision chose the intent linked
    to it, ``faq:``) is that entry's translation (its buttons kept); else None."""
    if reply.kind not in ("faq", "intent") or not reply.citations:
        return None
    cited = [passage(i) for i in dict.fromkeys(c.passage_id for c in reply.citations)]
    if any(p is None for p in cited):
        return None
    if reply.kind == "intent" and len(cited) != 1:
        return None
    if reply.kind == "faq" and reply.text != "\n\n".join(p.text for p in cited if p is not None):
        return None
    texts = [p.translated(customer) for p in cited if p is not None]
    if any(t is None for t in texts):
        return None
    return dataclasses.replace(reply, text="\n\n".join(t for t in texts if t is not None))

