"""Human handoff: the session state that marks it, its triggers, and the agent's summary.

``session.state["handoff"]`` holds ``status`` (``waiting`` until an agent takes it, then
``active``; ``released`` once the bot is back, kept so the agent API can list it), ``reason``,
``since`` and ``agent``. While it is set the router stays silent (a
short note). Agent messages the user's channel could not take at once wait in
``session.state["outbox"]``. The summary is extractive (no model): intents seen, slots, FAQ
topics cited and the last user messages.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from bot.definition.dialogue import HandoffSettings
from bot.sessions.store import Session

HANDOFF_KEY = "handoff"
OUTBOX_KEY = "outbox"
SEEN_KEY = "seen"
MISSES_KEY = "misses"
FRUSTRATION_KEY = "frustration"
SEEN_LIMIT = 10
OUTBOX_LIMIT = 50


def handoff_status(session: Session) -> str | None:
    """``"waiting"``, ``"active"`` or None when the bot is in charge."""
    state = session.state.get(HANDOFF_KEY)
    status = state.get("status") if isinstance(state, dict) else None
    return status if status in ("waiting", "active") else None


def start_handoff(session: Session, reason: str) -> None:
    """Mark the conversation as waiting for a person."""
    session.state[HANDOFF_KEY] = {"status": "waiting", "reason": reason, "since": time.time(),
                                  "agent": None, "notified": False}
    session.state.pop("form", None)


def take(session: Session, agent: str) -> None:
    """An agent takes the conversation."""
    state = session.state[HANDOFF_KEY]
    state.update(status="active", agent=agent, taken_at=time.time())


def release(session: Session) -> None:
    """Hand the conversation back to the bot, with fresh trigger counters; the handoff is
    kept as ``released`` (who, why, when) until the next one."""
    state = session.state.get(HANDOFF_KEY)
    if isinstance(state, dict):
        state.update(status="released", released_at=time.time())
        for key in ("notified", "taken_at"):
            state.pop(key, None)
    for key in (MISSES_KEY, FRUSTRATION_KEY):
        session.state.pop(key, None)


def trigger(settings: HandoffSettings | None, *, intent: str | None, asked: bool,
            frustration: Any = None) -> str | None:
    """Why this message hands off (``"requested"``, ``"frustrated"``), or None.

    ``asked``: a person was asked for (an intent marked ``handoff: true``, or the message's
    own words); ``frustration`` is the session's
    :class:`adapters.classifiers.sentiment.Frustration` after this message.
    """
    if settings is None:
        return None
    if asked or (intent is not None and intent == settings.intent):
        return "requested"
    if frustration is not None:
        streak = settings.negative_streak
        if streak and frustration.streak >= streak:
            return "frustrated"
        level = settings.frustration_level
        if level is not None and frustration.level >= level:
            return "frustrated"
    return None


def _remember(values: list[str], new: Iterable[str]) -> list[str]:
    for value in new:
        if value in values:
            values.remove(value)
        values.append(value)
    return values[-SEEN_LIMIT:]


def note_turn(session: Session, *, intent: str | None, topics: Iterable[str] = ()) -> None:
    """Remember the intents and FAQ topics of the conversation, for the summary."""
    seen = session.state.setdefault(SEEN_KEY, {})
    seen["intents"] = _remember(list(seen.get("intents", [])), [intent] if intent else [])
    seen["faq"] = _remember(list(seen.get("faq", [])), topics)


def summarize(session: Session, *, messages: int = 5, current: str | None = None
              ) -> dict[str, Any]:
    """What an agent reads first: reason, intents, slots, FAQ topics, last user messages."""
    state = session.state.get(HANDOFF_KEY) or {}
    seen = session.state.get(SEEN_KEY) or {}
    said = [t["text"] for t in session.history if t.get("role") == "user"]
    if current is not None:
        said.append(current)
    last = said[-messages:]
    slots = {k: v for k, v in session.slots.items() if v is not None}
    parts = [f"Handed off: {state.get('reason', 'unknown reason')}."]
    if seen.get("intents"):
        parts.append(f"Intents: {', '.join(seen['intents'])}.")
    if slots:
        parts.append("Slots: " + ", ".join(f"{k}={v}" for k, v in slots.items()) + ".")
    if seen.get("faq"):
        parts.append(f"FAQ topics: {'; '.join(seen['faq'])}.")
    if last:
        parts.append("Last messages: " + " | ".join(f'"{m}"' for m in last))
    return {"reason": state.get("reason"), "intents": list(seen.get("intents", [])),
            "slots": slots, "faq_topics": list(seen.get("faq", [])),
            "last_user_messages": last, "text": " ".join(parts)}


def queue(session: Session, message: dict[str, Any]) -> None:
    """Keep an agent message for the user's next poll (oldest dropped past the limit)."""
    outbox = [*session.state.get(OUTBOX_KEY, []), message]
    session.state[OUTBOX_KEY] = outbox[-OUTBOX_LIMIT:]


def pop_outbox(session: Session) -> list[dict[str, Any]]:
    """The queued agent messages, removed from the session."""
    messages = session.state.pop(OUTBOX_KEY, [])
    return messages if isinstance(messages, list) else []


def drop_shown(session: Session, shown: set[str]) -> bool:
    """Forget the queued messages whose text the customer has been shown (the widget's
    history after a reload); whether any was."""
    outbox = session.state.get(OUTBOX_KEY)
    if not isinstance(outbox, list):
        return False
    kept = [m for m in outbox if str(m.get("text", "")) not in shown]
    if len(kept) == len(outbox):
        return False
    if kept:
        session.state[OUTBOX_KEY] = kept
    else:
        session.state.pop(OUTBOX_KEY)
    return True


def pop_outbox_text(session: Session) -> str | None:
    """The queued agent messages as one text (removed from the session), or None."""
    queued = pop_outbox(session)
    return "\n\n".join(str(m.get("text", "")) for m in queued) if queued else None
