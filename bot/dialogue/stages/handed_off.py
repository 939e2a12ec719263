"""Handed off to a person: the bot stays silent (a short note) or delivers queued agent
messages."""

from __future__ import annotations

from bot.dialogue.handoff import handoff_status, pop_outbox_text
from bot.dialogue.turn import Parts, Turn
from foundation.messages import BotReply


async def handed_off(turn: Turn, parts: Parts) -> BotReply | None:
    session = turn.session
    if handoff_status(session) is None:
        return None
    queued = pop_outbox_text(session)
    if queued is not None:
        return BotReply(text=queued, kind="agent", handoff=True)
    state = session.state["handoff"]
    first = not state.get("notified") and state.get("status") == "waiting"  # no person yet
    state["notified"] = True
    settings = parts.config.handoff
    if settings is None:
        text = "A member of our team will answer you here shortly."
    else:
        text = settings.waiting_message if first else settings.note
    return BotReply(text=text, kind="handoff", handoff=True)
