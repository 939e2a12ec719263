"""Passages written for agents, not customers: found so that `bot validate` can say so.

A team's knowledge often holds its agents' guidelines ("Ask the customer for the order
number", "Generate the promo code and share that with them. Click on [Promo Code]."). Quoted
to a customer, they read as nonsense or leak how the team works. Such files belong in
``faq.agent_sources``, whose passages are never quoted to customers; this finds the
passages of other sources that read like instructions to an agent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from retrieval.documents import Passage

_PERSON = r"(?:customer|caller|client|guest|shopper|member|user)s?"
_INSTRUCTION = re.compile("|".join((
    rf"\b(?:ask|tell|inform|advise|remind|reassure|assure|offer|thank|greet) (?:the |this )?"
    rf"{_PERSON}\b",
    rf"\b(?:share|send|give) (?:that|it|this|them|the \w+) (?:with|to) (?:them|the {_PERSON})\b",
    r"\bclick (?:on )?\[",
    r"\b(?:escalate (?:it|this|the case|the ticket)|raise a ticket|create a ticket|"
    r"log a ticket|tag the ticket)\b",
    r"\b(?:agents?|advisors?|reps?) (?:should|must|need to)\b",
)), re.IGNORECASE)


def agent_instructions(passages: Iterable[Passage]) -> list[tuple[Passage, str]]:
    """The customers' passages that read like an instruction to an agent, each with the
    words that show it."""
    found = []
    for passage in passages:
        if passage.audience == "agents":
            continue
        match = _INSTRUCTION.search(passage.text)
        if match is not None:
            found.append((passage, match.group()))
    return found
