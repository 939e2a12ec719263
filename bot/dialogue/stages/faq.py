"""FAQ: the :class:`~bot.dialogue.answerer.FaqAnswerer` answers from the passages found.

Follow-ups ("and how long does that take?") are searched together with the previous
question (``bot/dialogue/follow_up.py``). A generated answer that declines becomes a
fallback turn (``stages/fallback.py``); no relevant passage passes the turn on.
"""

from __future__ import annotations

from bot.dialogue.follow_up import contextual_query
from bot.dialogue.stages.fallback import escalate
from bot.dialogue.turn import Parts, Turn
from bot.messages import BotReply, ReplyStream


async def faq(turn: Turn, parts: Parts) -> ReplyStream | None:
    faq_settings, dialogue = parts.config.faq, parts.config.dialogue
    if faq_settings is None:
        return None
    query = turn.text
    if dialogue.follow_up and turn.session.history:
        query = await contextual_query(turn.session, turn.text, retrieve=turn.hits,
                                       threshold=faq_settings.answer_threshold,
                                       max_words=dialogue.follow_up_max_words)
    stream = parts.answerer.answer(turn.session, turn.text, await turn.hits(query))
    if stream is None:
        return None

    async def declined(reply: BotReply) -> BotReply:
        return escalate(turn, parts, reply) if reply.kind == "fallback" else reply

    return stream.on_reply(declined)
