"""Does a message ask for a person? Every bot with a ``handoff`` section understands it,
without the team writing an intent for it.

Patterns, not a model: a request for a person is a short, fixed kind of sentence ("can I
talk to a human", "agent please", "hablar con una persona", "转人工"), and a false positive
costs a person's time, so they only match a verb of talking aimed at a person, or a person
word on its own. ``benchmarks/person_requests.py`` measures them on held-out requests,
look-alikes ("I sent money to someone") and Banking77's customer messages.
"""

from __future__ import annotations

import re

_PERSON = (r"(?:human|person|people|agent|someone|somebody|anyone|representative|rep|"
           r"operator|staff|advisor|adviser|manager|consultant|customer service|support team|"
           r"one of (?:you|your (?:staff|team|people|colleagues)))")
_TALK = r"(?:talk|speak|chat|connect|pass|put|get|switch|escalate)(?:ing)?"  # not "transfer": money
_PATTERNS = [
    # "can I talk to a human", "connect me with an agent", "put me through to support"
    rf"\b{_TALK}\b(?: me)?(?: (?:through|over|back))? (?:to|with)\b(?: (?:a|an|the|one|some|"
    rf"your|a real|a live|an actual|somebody from|someone from|one of))*\s*{_PERSON}\b",
    rf"\b(?:get|give|find) me (?:a|an|the)? ?(?:real |live |actual )?{_PERSON}\b",
    # "is there a person I can chat with?"
    rf"\b{_PERSON} (?:i|we) (?:can|could) (?:talk|speak|chat)\b",
    # "a real person", "live agent", "real human"
    r"\b(?:real|live|actual) (?:person|human|agent|people)\b",
    # the person word alone, maybe with "please" / "now" / "!"
    rf"^\W*(?:i want |i need |i'd like )?(?:a |an |the )?{_PERSON}\W*(?:please|pls|now)?\W*$",
    r"\b(?:human|agent|operator|person) (?:please|pls|now)\b",
    # other languages: Spanish, Portuguese, German, French, Italian, Dutch, Chinese
    r"\bhablar con (?:una? )?(?:persona|agente|humano|asesor|operador)",
    r"\bfalar com (?:uma? )?(?:pessoa|atendente|humano|agente)",
    r"\bmit (?:einem|einer|jemandem|einem echten) ?(?:mitarbeiter|menschen|person|berater)",
    r"\bparler (?:à|a|avec) (?:un|une|quelqu'un)\s?(?:humain|personne|agent|conseiller)?",
    r"\bparlare con (?:un|una) (?:operatore|persona|umano|consulente)",
    r"\b(?:een|met een) (?:medewerker|mens)\b",
    r"人工|真人",
]
_REQUEST = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def asks_for_person(text: str) -> bool:
    """Whether ``text`` asks to talk to a person."""
    return bool(_REQUEST.search(" ".join(text.split())))
