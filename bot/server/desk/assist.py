"""Agent assist: answers the desk suggests for the customer's last message.

The served FAQ index is searched with the customer's last message; the passages found,
the ones written for agents (``faq.agent_sources``, ``audience: agents``) included, come
back as suggestions with their citation, best first. The desk inserts one into the reply
box with one click, for the agent to edit; nothing is sent by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from retrieval.index import Hit

Search = Callable[[str, int], Sequence[Hit]]  # (text, k) -> hits, best first (blocking)
SUGGESTIONS = 3
MIN_SCORE = 0.3  # a cosine below this is rarely about the same thing


def last_customer_message(history: list[dict[str, Any]]) -> str | None:
    """The customer's latest message in ``history`` (None before the first)."""
    return next((str(t.get("text", "")) for t in reversed(history) if t.get("role") == "user"),
                None)


async def suggestions(search: Search, question: str | None) -> list[dict[str, Any]]:
    """Up to :data:`SUGGESTIONS` passages for ``question`` scoring at least
    :data:`MIN_SCORE`: ``{"id", "title", "text", "source", "audience", "score"}``."""
    if not question:
        return []
    hits = await asyncio.to_thread(search, question, SUGGESTIONS * 2)
    found: list[dict[str, Any]] = []
    for hit in hits:
        passage = hit.passage
        if hit.score < MIN_SCORE or any(f["id"] == passage.id for f in found):
            continue
        found.append({"id": passage.id, "title": passage.question or passage.title or passage.id,
                      "text": passage.text, "source": passage.source,
                      "audience": passage.audience, "score": round(float(hit.score), 3)})
    return found[:SUGGESTIONS]
