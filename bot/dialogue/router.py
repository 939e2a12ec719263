"""Decide what the bot answers for one message, given the session so far.

Stages run in order; the first that answers wins:

1. handed off to a person: the bot stays silent (a short note; queued agent messages);
2. an active form: fill and validate the pending slot and ask the next; a question instead
   of a value is answered (intent response or FAQ) and the slot re-asked; "cancel"/"stop"
   or the cancel intent stops the form;
3. classification (intent, sentiment): handoff on request, on a negative streak;
4. intent: its response, form or HTTP action; two close intents: "Did you mean A or B?";
   an intent with only a canned response yields to a strong FAQ match unless near certain;
5. FAQ / unknown: the :class:`FaqAnswerer`, with follow-ups ("and how long does that
   take?") searched together with the previous question (``bot/dialogue/follow_up.py``);
6. fallback: clarify, then offer a person, then hand off (``handoff.fallback_streak``).

A button payload equal to an intent name (``human_agent`` or ``/human_agent``) selects that
intent directly. Without an analyzer (a bot with no intents) stages 3-4 are skipped. Replies
carry the intent, its confidence (FAQ replies: the retrieval score) and the sentiment.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.classifiers import Analysis
from adapters.entities import EntityExtractor
from adapters.sentiment import Frustration
from bot.definition.config import BotConfig, Intent
from bot.dialogue.actions import ActionRunner
from bot.dialogue.answerer import FaqAnswerer
from bot.dialogue.follow_up import contextual_query, is_question
from bot.dialogue.forms import FormReply, FormRunner
from bot.dialogue.handoff import (
    FRUSTRATION_KEY,
    MISSES_KEY,
    handoff_status,
    note_turn,
    pop_outbox,
    start_handoff,
    trigger,
)
from bot.dialogue.templates import Rendered, Templates, session_context
from bot.messages import BotReply, UserMessage, final_reply
from bot.sessions.store import Session


class MessageAnalyzer(Protocol):
    """Classifies a message: intent, sentiment, the session's frustration, entities
    (:class:`adapters.classifiers.Analyzer`, or a deterministic fake in tests)."""

    def analyze(self, text: str, *, frustration: Any = None) -> Analysis: ...


@dataclass(frozen=True)
class _Intent:
    """The intent this turn acts on (None: none confident), and what the classifier said."""

    intent: Intent | None
    name: str | None
    confidence: float | None
    ambiguous: tuple[str, ...] = ()


@dataclass
class Router:
    """Routes a message to the stage that answers it."""

    config: BotConfig
    answerer: FaqAnswerer
    analyzer: MessageAnalyzer | None = None
    templates: Templates = field(init=False)
    actions: ActionRunner = field(init=False)
    forms: FormRunner = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.templates = Templates(config.responses, seed=config.dialogue.seed,
                                   bot_name=config.persona.name)
        self.actions = ActionRunner(config.actions, self.templates,
                                    error_message=config.dialogue.action_error)
        self.forms = FormRunner(config.forms, self.templates, self.actions,
                                EntityExtractor(config.entities))
        self._intents = {i.name: i for i in config.intents}

    async def route(self, session: Session, message: UserMessage) -> BotReply:
        return await final_reply(self.route_stream(session, message))

    async def route_stream(self, session: Session,
                           message: UserMessage) -> AsyncIterator[str | BotReply]:
        """Text deltas of the reply as they are produced, then the final :class:`BotReply`."""
        text = message.text
        if handoff_status(session) is not None:
            note = self._handed_off(session)
            yield note.text
            yield note
            return
        analysis, chosen = await self._classify(session, text)
        reply = await self._decide(session, text, chosen, analysis)
        if reply is None:
            async for item in self._faq(session, text):
                if isinstance(item, BotReply):
                    reply = item
                else:
                    yield item
        else:
            yield reply.text
        assert reply is not None
        yield self._finish(session, reply, chosen, analysis)

    # -- classification --------------------------------------------------------------------

    async def _classify(self, session: Session, text: str) -> tuple[Analysis | None, _Intent]:
        payload = text.strip().lstrip("/")
        handoff = self.config.handoff
        if payload in self._intents or (handoff is not None and payload == handoff.intent):
            return None, _Intent(self._intents.get(payload), payload, 1.0)
        if self.analyzer is None:
            return None, _Intent(None, None, None)
        before = Frustration.from_dict(session.state.get(FRUSTRATION_KEY))
        analysis = await asyncio.to_thread(self.analyzer.analyze, text, frustration=before)
        session.state[FRUSTRATION_KEY] = analysis.frustration.to_dict()
        prediction = analysis.intent
        if prediction is None:
            return analysis, _Intent(None, None, None)
        if prediction.ambiguous and len(prediction.ranking) > 1:
            names = tuple(name for name, _ in prediction.ranking[:2])
            return analysis, _Intent(None, prediction.intent, prediction.confidence, names)
        name = None if prediction.out_of_scope else prediction.intent
        return analysis, _Intent(self._intents.get(name or ""), name, prediction.confidence)

    # -- stages 2-4 ------------------------------------------------------------------------

    async def _decide(self, session: Session, text: str, chosen: _Intent,
                      analysis: Analysis | None) -> BotReply | None:
        if self.forms.pending(session) is not None:
            return await self._form_turn(session, text, chosen)
        frustration = analysis.frustration if analysis is not None else None
        reason = trigger(self.config.handoff, intent=chosen.name if not chosen.ambiguous else None,
                         asked=chosen.intent is not None and chosen.intent.handoff,
                         frustration=frustration)
        if reason is not None:
            return self._hand_off(session, reason, chosen.intent)
        if chosen.ambiguous:
            return self._clarify(*chosen.ambiguous[:2])
        if chosen.intent is not None and not await self._faq_is_better(text, chosen):
            return await self._intent_reply(session, chosen.intent, text)
        return None

    async def _faq_is_better(self, text: str, chosen: _Intent) -> bool:
        """A strong FAQ match beats an intent that only has a canned response, unless the
        classifier is near certain (``dialogue.faq_over_intent`` / ``intent_certain``)."""
        intent, dialogue = chosen.intent, self.config.dialogue
        if intent is None or intent.form or intent.action or dialogue.faq_over_intent is None:
            return False
        if (chosen.confidence or 0.0) >= dialogue.intent_certain:
            return False
        hits = await self.answerer.retrieve(text)
        return bool(hits) and hits[0].score >= dialogue.faq_over_intent

    async def _form_turn(self, session: Session, text: str, chosen: _Intent) -> BotReply:
        dialogue = self.config.dialogue
        normalised = " ".join(text.lower().split()).strip(" .!")
        if normalised in dialogue.cancel_words or chosen.name == dialogue.cancel_intent:
            return self._form_reply(self.forms.cancel(session))
        pending = self.forms.pending(session)
        assert pending is not None
        reason: str | None = None
        if pending[1].type != "text" or not is_question(text):
            parsed = await self.forms.fill(session, text)
            if parsed.ok:
                return self._form_reply(await self.forms.advance(session))
            reason = parsed.reason
        interruption = await self._interruption(session, text, chosen)
        if interruption is not None:
            if interruption.handoff:
                return interruption
            ask = self.forms.prompt(session)
            return dataclasses.replace(interruption, text=f"{interruption.text}\n\n{ask.text}",
                                       buttons=interruption.buttons + ask.buttons)
        if reason is None:  # a question-like text answer that nothing else answers
            parsed = await self.forms.fill(session, text)
            if parsed.ok:
                return self._form_reply(await self.forms.advance(session))
            reason = parsed.reason or ""
        return self._form_reply(self.forms.reask(session, reason))

    async def _interruption(self, session: Session, text: str,
                            chosen: _Intent) -> BotReply | None:
        """A question asked in the middle of a form: its answer, or None.

        Asking for a person always counts; otherwise only question-like messages do.
        """
        intent = chosen.intent
        reason = trigger(self.config.handoff, intent=chosen.name,
                         asked=intent is not None and intent.handoff)
        if reason is not None:
            return self._hand_off(session, reason, intent)
        if not is_question(text):
            return None
        if intent is not None and intent.response and not (intent.form or intent.action) \
                and not await self._faq_is_better(text, chosen):
            return self._rendered(self._respond(intent.response, session), "intent")
        return self.answerer.exact_answer(await self.answerer.retrieve(text))

    async def _intent_reply(self, session: Session, intent: Intent, text: str) -> BotReply | None:
        intro = self._respond(intent.response, session) if intent.response else None
        if intent.form is not None:
            step = await self.forms.start(session, intent.form, text)
            reply = self._form_reply(step)
            if intro is None:
                return reply
            return dataclasses.replace(reply, text=f"{intro.text}\n\n{reply.text}",
                                       buttons=intro.buttons + reply.buttons)
        if intent.action is not None:
            result = await self.actions.run(intent.action, session_context(session))
            session.slots.update(result.slots)
            rendered = result.reply or intro or Rendered(self.config.dialogue.action_error)
            return self._rendered(rendered, "action" if result.ok else "action_error")
        return self._rendered(intro, "intent") if intro is not None else None

    def _clarify(self, first: str, second: str) -> BotReply:
        titles = [self._title(first), self._title(second)]
        text = self.templates.render(self.config.dialogue.clarify,
                                     {"first": titles[0], "second": titles[1]})
        buttons = tuple({"title": t, "payload": n} for t, n in zip(titles, (first, second),
                                                                    strict=True))
        return BotReply(text=text, buttons=buttons, kind="clarify")

    def _title(self, name: str) -> str:
        intent = self._intents.get(name)
        return intent.title if intent is not None and intent.title else name.replace("_", " ")

    # -- handoff ---------------------------------------------------------------------------

    def _hand_off(self, session: Session, reason: str, intent: Intent | None) -> BotReply:
        settings = self.config.handoff
        assert settings is not None
        start_handoff(session, reason)
        if reason == "requested" and intent is not None and intent.response:
            rendered = self._respond(intent.response, session)
        else:
            text = settings.frustrated_message if reason == "frustrated" else settings.message
            rendered = Rendered(text)
        return BotReply(text=rendered.text, kind="handoff", handoff=True,
                        buttons=rendered.buttons)

    def _handed_off(self, session: Session) -> BotReply:
        settings = self.config.handoff
        queued = pop_outbox(session)
        if queued:
            text = "\n\n".join(str(m.get("text", "")) for m in queued)
            return BotReply(text=text, kind="agent", handoff=True)
        state = session.state["handoff"]
        first = not state.get("notified")
        state["notified"] = True
        if settings is None:
            text = "A member of our team will answer you here shortly."
        else:
            text = settings.waiting_message if first else settings.note
        return BotReply(text=text, kind="handoff", handoff=True)

    # -- stages 5-6 ------------------------------------------------------------------------

    async def _faq(self, session: Session, text: str) -> AsyncIterator[str | BotReply]:
        query, faq, dialogue = text, self.config.faq, self.config.dialogue
        if dialogue.follow_up and faq is not None and session.history:
            query = await contextual_query(session, text, retrieve=self.answerer.retrieve,
                                           threshold=faq.answer_threshold,
                                           max_words=dialogue.follow_up_max_words)
        final: BotReply | None = None
        async for item in self.answerer.stream(session, text, query):
            if isinstance(item, BotReply):
                final = item
            else:
                yield item
        assert final is not None
        if final.kind == "fallback":
            extra, final = self._fallback(session, final)
            if extra:
                yield extra
        yield final

    def _fallback(self, session: Session, reply: BotReply) -> tuple[str, BotReply]:
        """Clarify (the answerer's text), then offer a person, then hand off."""
        misses = int(session.state.get(MISSES_KEY, 0)) + 1
        session.state[MISSES_KEY] = misses
        response = self.config.responses.get("fallback")
        buttons = reply.buttons + tuple({"title": b.title, "payload": b.payload}
                                        for b in (response.buttons if response else ()))
        settings = self.config.handoff
        if settings is not None and settings.fallback_streak and \
                misses >= settings.fallback_streak:
            start_handoff(session, "not understood")
            extra = f"\n\n{settings.fallback_message}"
            return extra, BotReply(text=reply.text + extra, kind="handoff", handoff=True)
        if settings is not None and settings.offer_after and misses >= settings.offer_after:
            extra = f"\n\n{settings.offer}"
            offer = {"title": settings.offer_button, "payload": settings.intent}
            buttons = (*(b for b in buttons if b["payload"] != settings.intent), offer)
            return extra, dataclasses.replace(reply, text=reply.text + extra, buttons=buttons)
        return "", dataclasses.replace(reply, buttons=buttons)

    # -- helpers ---------------------------------------------------------------------------

    def _respond(self, name: str, session: Session) -> Rendered:
        return self.templates.response(name, session_context(session))

    @staticmethod
    def _rendered(rendered: Rendered, kind: str) -> BotReply:
        return BotReply(text=rendered.text, buttons=rendered.buttons, kind=kind)

    @staticmethod
    def _form_reply(step: FormReply) -> BotReply:
        return BotReply(text=step.text, buttons=step.buttons, kind=step.kind)

    def _finish(self, session: Session, reply: BotReply, chosen: _Intent,
                analysis: Analysis | None) -> BotReply:
        if reply.kind != "fallback":
            session.state.pop(MISSES_KEY, None)
        note_turn(session, intent=chosen.name if not chosen.ambiguous else None,
                  topics=[c.title or c.passage_id for c in reply.citations])
        updates: dict[str, Any] = {}
        if reply.intent is None and chosen.name is not None and not chosen.ambiguous:
            updates["intent"] = chosen.name
        if reply.confidence is None and chosen.confidence is not None:
            updates["confidence"] = round(chosen.confidence, 4)
        if analysis is not None:
            updates["sentiment"] = analysis.sentiment.label
        return dataclasses.replace(reply, **updates) if updates else reply
