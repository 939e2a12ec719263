"""An active form: fill and validate the pending slot and ask the next.

A question instead of a value is answered (intent response or FAQ) and the slot re-asked;
asking for a person hands off; "cancel"/"stop" or the cancel intent stops the form.
"""

from __future__ import annotations

from bot.dialogue.follow_up import is_question
from bot.dialogue.handoff import trigger
from bot.dialogue.stages.intent import faq_is_better
from bot.dialogue.stages.triggers import hand_off
from bot.dialogue.turn import Parts, Turn, form_reply, joined, rendered_reply
from foundation.messages import BotReply


async def active_form(turn: Turn, parts: Parts) -> BotReply | None:
    session, text, forms = turn.session, turn.text, parts.forms
    pending = forms.pending(session)
    if pending is None:
        return None
    dialogue = parts.config.dialogue
    normalised = " ".join(text.lower().split()).strip(" .!")
    if normalised in dialogue.cancel_words or turn.chosen.name == dialogue.cancel_intent:
        return form_reply(forms.cancel(session))
    reason: str | None = None
    if pending[1].type != "text" or not is_question(text):
        parsed = await forms.fill(session, text, turn.entities)
        if parsed.ok:
            return form_reply(await forms.advance(session))
        reason = parsed.reason
    interruption = await _interruption(turn, parts)
    if interruption is not None:
        if interruption.handoff:
            return interruption
        return joined(interruption, forms.prompt(session), interruption)
    if reason is None:  # a question-like text answer that nothing else answers
        parsed = await forms.fill(session, text, turn.entities)
        if parsed.ok:
            return form_reply(await forms.advance(session))
        reason = parsed.reason or ""
    return form_reply(forms.reask(session, reason))


async def _interruption(turn: Turn, parts: Parts) -> BotReply | None:
    """A question asked in the middle of a form: its answer, or None.

    Asking for a person always counts; otherwise only question-like messages do.
    """
    chosen = turn.chosen.intent
    reason = trigger(parts.config.handoff, intent=turn.chosen.name,
                     asked=chosen is not None and chosen.handoff)
    if reason is not None:
        return hand_off(turn, parts, reason)
    if not is_question(turn.text):
        return None
    if chosen is not None and chosen.response and not (chosen.form or chosen.action) \
            and not await faq_is_better(turn, parts):
        return rendered_reply(parts.response(chosen.response, turn.session), "intent")
    return await parts.answerer.exact_answer(turn.text, await turn.hits())
