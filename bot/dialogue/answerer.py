"""Answer a question from the FAQ: grounded generation, or the exact FAQ answer.

The FAQ stage of routing (``stages/faq.py``) uses it. Without ``model.generation`` a turn
answers with the best passage above ``faq.answer_threshold``: a FAQ answer as written, or of
free text the sentences closest to the question. With it, a top match at or above
``model.exact_answer_threshold`` still gets the FAQ's own answer (the fast path); otherwise
the dialogue model answers from the passages above ``faq.answer_threshold``, streaming, and
cites the ones it used. A passage of ``faq.agent_sources`` is never quoted: it may only
ground a generated answer that passes the checks (``adapters/answering/grounding.py``).
No relevant passage, or a model that declines, is a fallback turn
(the fallback stage then offers a person); when the answer policy decided on the passage, a
declining model gets the passage's own answer instead (the model declines more often with a
conversation's earlier turns in its prompt).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from adapters.answering.answer_policy import AnswerPolicy
from adapters.answering.grounding import check_generated
from adapters.classifiers.analysis import Analysis
from adapters.engines.answers import GenerationRequest
from adapters.engines.prompting import PromptTurn
from adapters.engines.protocol import StreamingModel
from bot.definition.config import BotConfig
from bot.sessions.store import Session
from foundation.messages import BotReply, Citation, ReplyStream
from retrieval.index import Hit, relevant_hits
from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)


def citation(hit: Hit) -> Citation:
    passage = hit.passage
    return Citation(passage_id=passage.id, source=passage.source,
                    title=passage.title or passage.question or "", score=round(hit.score, 4))


@dataclass(frozen=True)
class Generator:
    """The dialogue model and the adapter this bot answers with (None: the plain base or,
    on a model server, the served model)."""

    model: StreamingModel
    adapter: str | None


def recent_turns(session: Session, turns: int) -> list[PromptTurn]:
    """The last ``turns`` exchanges of the session as prompt history."""
    if turns <= 0:
        return []
    return [PromptTurn("user" if item["role"] == "user" else "assistant", str(item["text"]))
            for item in session.history[-2 * turns:]]


@dataclass
class FaqAnswerer:
    """Retrieves passages and answers from them, or falls back."""

    config: BotConfig
    knowledge: KnowledgeBase | None = None
    generator: Generator | None = None
    policy: AnswerPolicy | None = None  # None: answer by ``faq.answer_threshold`` alone

    async def retrieve(self, query: str, analysis: Analysis | None = None) -> list[Hit]:
        """Top-k FAQ passages for ``query`` (the embedding runs off the event loop); the
        message's ``analysis`` lends its vector when it embedded this text with this
        index's embedder."""
        knowledge, faq = self.knowledge, self.config.faq
        if knowledge is None or faq is None:
            return []
        vector = analysis.vector if analysis is not None and analysis.text == query \
            and analysis.model == knowledge.embedder.name else None
        return await asyncio.to_thread(knowledge.search, query, faq.top_k, vector=vector)

    def relevant(self, hits: list[Hit], *, margin: float | None = None) -> list[Hit]:
        """The hits at or above ``faq.answer_threshold`` (and within ``margin`` of the best)."""
        faq = self.config.faq
        if faq is None:
            return []
        return relevant_hits(hits, threshold=faq.answer_threshold, margin=margin)

    async def exact_answer(self, question: str, hits: list[Hit], *,
                           decided: bool = False) -> BotReply | None:
        """:meth:`exact_reply`, off the event loop (a free-text excerpt embeds sentences)."""
        return await asyncio.to_thread(self.exact_reply, question, hits, decided=decided)

    def exact_reply(self, question: str, hits: list[Hit], *,
                    decided: bool = False) -> BotReply | None:
        """The best passage's answer to ``question`` with its citation, if it clears the
        threshold (or the answer policy ``decided`` on it): a FAQ answer as written; of free
        text, the whole sentences closest to the question (``KnowledgeBase.excerpt``)."""
        relevant = hits[:1] if decided else self.relevant(hits[:1])
        if not relevant or relevant[0].passage.audience == "agents":  # never quoted as written
            return None
        best = relevant[0]
        text = best.passage.text
        if best.passage.question is None and self.knowledge is not None:
            text = self.knowledge.excerpt(question, text)
        return BotReply(text=text, citations=(citation(best),), kind="faq",
                        confidence=round(best.score, 4))

    def _own_names(self) -> list[str]:
        """Names a generated answer may use without a passage: the bot's and its persona's."""
        persona = self.config.persona
        return [self.config.name, persona.name, persona.description]

    def fallback(self) -> BotReply:
        return BotReply(text=self.config.fallback.message, kind="fallback")

    async def answer(self, session: Session, text: str, hits: list[Hit], *,
                     decided: bool = False, quote: bool = False) -> ReplyStream | None:
        """The answer to ``text`` from the passages ``hits`` (searched for it, or for it
        with its context), or None when none is relevant. ``decided``: the answer policy
        chose ``hits[0]``; it is answered, with the others that are relevant. ``quote``: the
        passage's own text, never generated (a customer writing in another language than
        the bot's: the dialogue model was tuned and measured in the bot's language only,
        and the passage may have a translation to quote)."""
        confident = bool(hits) and hits[0].score >= self.config.model.exact_answer_threshold \
            and hits[0].passage.audience != "agents"  # agents' text: only ever generated from
        relevant = self.relevant(hits, margin=self.config.model.passage_margin)
        if decided and hits:
            relevant = [hits[0], *(h for h in relevant if h.passage.id != hits[0].passage.id)]
        if self.generator is None or confident or quote or not relevant:
            reply = await self.exact_answer(text, hits, decided=decided)
            return None if reply is None else ReplyStream.of(reply)
        return self._generate(self.generator, session, text, relevant, decided=decided)

    def _generate(self, generator: Generator, session: Session, text: str,
                  hits: list[Hit], *, decided: bool = False) -> ReplyStream:
        settings = self.config.model
        request = GenerationRequest(
            text, [h.passage for h in hits], persona=self.config.persona,
            history=recent_turns(session, settings.history_turns), adapter=generator.adapter,
            no_answer=self.config.fallback.message)
        stream = generator.model.stream(request)  # stopped when the client goes away

        def finish() -> BotReply:
            answer = stream.answer
            assert answer is not None
            if answer.degenerate:  # a looping answer is never shown: the FAQ's own, or none
                log.warning("the dialogue model's answer loops; replaced: %r", answer.text[:120])
                return self.exact_reply(text, hits) or self.fallback()  # rare: on the loop
            if answer.declined and decided:  # the decision stands: the entry as written
                return self.exact_reply(text, hits, decided=True) or self.fallback()
            if answer.declined:  # in the bot's own words: the model's may echo its rules
                return self.fallback()
            by_id = {h.passage.id: h for h in hits}
            cited = [by_id[i] for i in answer.cited_ids if i in by_id]
            check = check_generated(answer.text, question=text,  # uncited: all it was shown
                                    passages=[h.passage for h in cited or hits],
                                    known_names=self._own_names())
            if not check.ok:  # never shown: the passage's own answer, and why in the event
                log.info("generated answer replaced (%s): %r", ", ".join(check.problems),
                         answer.text[:120])
                own = self.exact_reply(text, hits, decided=True) or self.fallback()
                return replace(own, decision={"generated_replaced": list(check.problems)})
            return BotReply(text=answer.text, citations=tuple(citation(h) for h in cited),
                            kind="generated", confidence=round(hits[0].score, 4))

        return ReplyStream.streaming(stream, finish)
