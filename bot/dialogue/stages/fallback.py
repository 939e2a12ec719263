"""Fallback: nothing answered. Clarify, then offer a person, then hand off
(``handoff.offer_after`` / ``handoff.fallback_streak`` misses in a row); a clearly
frustrated customer is offered a person at the first miss."""

from __future__ import annotations

import dataclasses

from bot.dialogue.handoff import MISSES_KEY, start_handoff
from bot.dialogue.turn import Parts, Turn
from foundation.messages import BotReply


async def fallback(turn: Turn, parts: Parts) -> BotReply:
    reply = escalate(turn, parts, parts.answerer.fallback())
    if turn.decision is not None:  # the answer policy abstained: say on what evidence
        reply = dataclasses.replace(reply, decision=turn.decision.evidence())
    return reply


def escalate(turn: Turn, parts: Parts, reply: BotReply) -> BotReply:
    """The fallback ``reply`` with the fallback buttons, the offer of a person or the
    handoff this miss has earned."""
    session = turn.session
    misses = int(session.state.get(MISSES_KEY, 0)) + 1
    session.state[MISSES_KEY] = misses
    response = parts.config.responses.get("fallback")
    buttons = reply.buttons + tuple({"title": b.title, "payload": b.payload}
                                    for b in (response.buttons if response else ()))
    settings = parts.config.handoff
    if settings is not None and settings.fallback_streak and \
            misses >= settings.fallback_streak:
        start_handoff(session, "not understood")
        return BotReply(text=f"{reply.text}\n\n{settings.fallback_message}", kind="handoff",
                        handoff=True)
    frustrated = turn.analysis is not None and turn.analysis.sentiment.label == "negative"
    if settings is not None and settings.offer_after and \
            (misses >= settings.offer_after or frustrated):
        offer = {"title": settings.offer_button, "payload": settings.intent}
        buttons = (*(b for b in buttons if b["payload"] != settings.intent), offer)
        return dataclasses.replace(reply, text=f"{reply.text}\n\n{settings.offer}",
                                   buttons=buttons)
    return dataclasses.replace(reply, buttons=buttons)
