"""Handoff triggers: a person asked for (by an intent marked ``handoff: true``, the
``handoff.intent`` or in so many words, :mod:`bot.dialogue.person_request`), or a negative
streak (``handoff`` settings). An intent's guess that is not said in so many words yields to
a strong FAQ match, as canned responses do (``dialogue.faq_over_intent``)."""

from __future__ import annotations

from bot.dialogue.handoff import start_handoff, trigger
from bot.dialogue.person_request import asks_for_person
from bot.dialogue.stages.intent import faq_is_better
from bot.dialogue.templates import Rendered
from bot.dialogue.turn import Parts, Turn
from foundation.messages import BotReply


async def triggers(turn: Turn, parts: Parts) -> BotReply | None:
    chosen = turn.chosen
    intent = None if chosen.ambiguous else chosen.name
    asked = chosen.intent is not None and chosen.intent.handoff
    if asks_for_person(turn.text):
        asked = True
    elif (asked or intent == _handoff_intent(parts)) and await faq_is_better(turn, parts):
        # the classifier's guess of a request for a person, which the message does not say
        # in so many words, yields to a strong FAQ match ("can someone send money to my
        # account?"): a wrong handoff costs a person's time and leaves the question open
        asked, intent = False, None
    reason = trigger(parts.config.handoff, intent=intent, asked=asked,
                     frustration=turn.analysis.frustration if turn.analysis else None)
    return None if reason is None else hand_off(turn, parts, reason)


def _handoff_intent(parts: Parts) -> str | None:
    settings = parts.config.handoff
    return settings.intent if settings is not None else None


def hand_off(turn: Turn, parts: Parts, reason: str) -> BotReply:
    """Start the handoff; the intent's response when a person was asked for, else the
    handoff message."""
    settings = parts.config.handoff
    assert settings is not None
    start_handoff(turn.session, reason)
    intent = turn.chosen.intent
    if reason == "requested" and intent is not None and intent.response:
        rendered = parts.response(intent.response, turn.session)
    else:
        rendered = Rendered(settings.frustrated_message if reason == "frustrated"
                            else settings.message)
    return BotReply(text=rendered.text, buttons=rendered.buttons, kind="handoff", handoff=True)
