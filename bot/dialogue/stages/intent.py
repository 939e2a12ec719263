"""The intent: its response, form or HTTP action; two close intents: "Did you mean A or B?"
(with a learned answer policy, only when one of them acts: two canned responses are the
policy's to weigh among the FAQ's candidates).

An intent with only a canned response yields to a strong FAQ match unless the classifier is
near certain (``dialogue.faq_over_intent`` / ``intent_certain``).
"""

from __future__ import annotations

from bot.definition.config import Intent
from bot.dialogue.templates import Rendered, session_context
from bot.dialogue.turn import Parts, Turn, form_reply, joined, rendered_reply
from foundation.messages import BotReply


async def intent(turn: Turn, parts: Parts) -> BotReply | None:
    chosen = turn.chosen
    if chosen.ambiguous:
        if policy_decides(turn, parts) and not any(acts(parts, n) for n in chosen.ambiguous):
            return None  # two close canned responses: the answer decision weighs them
        return clarify(parts, *chosen.ambiguous[:2])
    if chosen.intent is None or await faq_is_better(turn, parts):
        return None
    policy = parts.answerer.policy
    if policy is not None and chosen.name in policy.evidence.links \
            and chosen.name in parts.answerable and policy_decides(turn, parts):
        # a canned response that states an FAQ entry's facts is one candidate answer among
        # the FAQ's: the FAQ stage decides (a button payload names its intent: no doubt)
        return None
    return await intent_reply(turn, parts, chosen.intent)


def policy_decides(turn: Turn, parts: Parts) -> bool:
    """Whether the FAQ stage's learned answer decision will weigh this turn's intents (it
    does for a classified message, not for a button's payload)."""
    return parts.answerer.policy is not None and turn.analysis is not None


def acts(parts: Parts, name: str) -> bool:
    """Whether intent ``name`` does more than answer (a form, an action, a handoff): such
    intents are not the answer decision's to choose."""
    found = parts.intents.get(name)
    return found is None or bool(found.form or found.action or found.handoff)


async def faq_is_better(turn: Turn, parts: Parts) -> bool:
    """A strong FAQ match beats the chosen intent when it has only a canned response."""
    chosen, dialogue = turn.chosen, parts.config.dialogue
    chosen_intent = chosen.intent
    if chosen_intent is None or chosen_intent.form or chosen_intent.action \
            or dialogue.faq_over_intent is None:
        return False
    if (chosen.confidence or 0.0) >= dialogue.intent_certain:
        return False
    hits = await turn.hits()
    return bool(hits) and hits[0].score >= dialogue.faq_over_intent


async def intent_reply(turn: Turn, parts: Parts, chosen: Intent) -> BotReply | None:
    """The intent's form (after its response), action, or response; None when it has none."""
    session = turn.session
    intro = parts.response(chosen.response, session) if chosen.response else None
    if chosen.form is not None:
        reply = form_reply(await parts.forms.start(session, chosen.form, turn.entities))
        return reply if intro is None else joined(intro, reply, reply)
    if chosen.action is not None:
        result = await parts.actions.run(chosen.action, session_context(session))
        session.slots.update(result.slots)
        rendered = result.reply or intro or Rendered(parts.config.dialogue.action_error)
        return rendered_reply(rendered, "action" if result.ok else "action_error")
    return rendered_reply(intro, "intent") if intro is not None else None


def clarify(parts: Parts, first: str, second: str) -> BotReply:
    """ "Did you mean A or B?" between two intents."""
    return clarify_options(parts, [(intent_title(parts, n), n) for n in (first, second)])


def clarify_options(parts: Parts, options: list[tuple[str, str]]) -> BotReply:
    """ "Did you mean A or B?" with a button for each option (title, payload)."""
    text = parts.templates.render(parts.config.dialogue.clarify,
                                  {"first": options[0][0], "second": options[1][0]})
    buttons = tuple({"title": title, "payload": payload} for title, payload in options)
    return BotReply(text=text, buttons=buttons, kind="clarify")


def intent_title(parts: Parts, name: str) -> str:
    """How "Did you mean ...?" names an intent: its ``title``, or its name spaced."""
    found = parts.intents.get(name)
    return found.title if found is not None and found.title else name.replace("_", " ")
