"""Decide what the bot answers for one message, given the session so far.

A :class:`~bot.dialogue.turn.Turn` runs through :data:`STAGES` in order; the first stage that
answers wins (each is one module of ``bot/dialogue/stages``):

0. ``language``: the customer's language, when ``language:`` asks for it (answers nothing);
1. ``handed_off``: handed off to a person, the bot stays silent (a short note; queued agent
   messages);
2. ``classify``: intent, sentiment and entities (answers nothing);
3. ``active_form``: fill the pending slot and ask the next, answer a question in between, stop
   on "cancel";
4. ``triggers``: handoff on request, on a negative streak;
5. ``intent``: its response, form or HTTP action, or "Did you mean A or B?";
6. ``faq``: an answer from the FAQ, follow-ups searched with the previous question;
7. ``fallback``: clarify, then offer a person, then hand off.

Agent messages still queued once the bot is back in charge (the handback note) come first in
the next reply. Replies carry the intent and its confidence when the intent decided them
(answers: the answer decision's probability that they are right; a fallback or a clarifying
question: none), and the sentiment. A reply the bot wrote in its own language to a customer
writing in another ends with a line in the customer's language saying so
(``bot/dialogue/language.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bot.definition.config import BotConfig
from bot.dialogue.answerer import FaqAnswerer
from bot.dialogue.catalog import Catalog
from bot.dialogue.handoff import MISSES_KEY, note_turn, pop_outbox_text
from bot.dialogue.language import translated
from bot.dialogue.stages.active_form import active_form
from bot.dialogue.stages.classify import classify
from bot.dialogue.stages.fallback import fallback
from bot.dialogue.stages.faq import faq
from bot.dialogue.stages.handed_off import handed_off
from bot.dialogue.stages.intent import intent
from bot.dialogue.stages.language import language
from bot.dialogue.stages.triggers import triggers
from bot.dialogue.turn import MessageAnalyzer, Parts, Stage, Turn
from bot.sessions.store import Session
from foundation.messages import BotReply, ReplyStream, UserMessage
from retrieval.passages import Passage

NOT_BY_INTENT = frozenset({"faq", "generated", "fallback", "clarify"})  # replies the intent
# did not decide: they carry no ``intent``

STAGES: tuple[Stage, ...] = (language, handed_off, classify, active_form, triggers, intent, faq,
                             fallback)


@dataclass
class Router:
    """Routes a message through the stages."""

    config: BotConfig
    answerer: FaqAnswerer
    analyzer: MessageAnalyzer | None = None
    stages: tuple[Stage, ...] = STAGES
    parts: Parts = field(init=False)
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        self.parts = Parts(self.config, self.answerer, self.analyzer)
        self.catalog = Catalog(self.config.translations)

    async def route(self, session: Session, message: UserMessage) -> ReplyStream:
        """The reply to ``message``, as it is produced."""
        turn = Turn(session, message, search=self.answerer.retrieve)
        for stage in self.stages:
            answer = await stage(turn, self.parts)
            if answer is not None:
                break
        else:
            raise RuntimeError("no stage answered (the last one must always answer)")
        stream = answer if isinstance(answer, ReplyStream) else ReplyStream.of(answer)
        queued = pop_outbox_text(session)  # e.g. "you're chatting with the assistant again"

        async def finish(reply: BotReply) -> BotReply:
            local = None if self.parts.language is None or turn.language is None else \
                translated(reply, turn.language, self._passage) or \
                self.catalog.translate(reply, turn.language)
            reply = local or reply
            if queued is not None:
                reply = dataclasses.replace(reply, text=f"{queued}\n\n{reply.text}")
            note = None if self.parts.language is None or turn.language is None or \
                local is not None or not reply.text else \
                self.parts.language.note(turn.language, reply.kind)
            if note is not None:  # last, so that a streamed answer's text stays as shown
                reply = dataclasses.replace(reply, text=f"{reply.text}\n\n{note}")
            return _finish(turn, reply)

        return stream.on_reply(finish)

    def _passage(self, passage_id: str) -> Passage | None:
        knowledge = self.answerer.knowledge
        return None if knowledge is None else knowledge.index.get(passage_id)


def _finish(turn: Turn, reply: BotReply) -> BotReply:
    """Remember the turn for the handoff summary; tag the reply with intent, confidence and
    sentiment."""
    session, chosen, analysis = turn.session, turn.chosen, turn.analysis
    if reply.kind != "fallback":
        session.state.pop(MISSES_KEY, None)
    note_turn(session, intent=chosen.name if not chosen.ambiguous else None,
              topics=[c.title or c.passage_id for c in reply.citations])
    updates: dict[str, Any] = {}
    if reply.intent is None and chosen.name is not None and not chosen.ambiguous \
            and reply.kind not in NOT_BY_INTENT:  # the intent decided the reply
        updates["intent"] = chosen.name
        if reply.confidence is None and chosen.confidence is not None:
            updates["confidence"] = round(chosen.confidence, 4)  # that it is the right one
    if analysis is not None:
        updates["sentiment"] = analysis.sentiment.label
    return dataclasses.replace(reply, **updates) if updates else reply
