"""FAQ: the answer decision (``adapters/answering/answer_policy.py``) over the retrieved
passages and the intents with a canned response, then the answer, "Do you mean A or B?", or
nothing.

Follow-ups ("and how long does that take?") are searched together with the previous
question (``bot/dialogue/follow_up.py``); a question that asks several things is answered
part by part (``bot/dialogue/multi_part.py``). The chosen passage is answered by the
:class:`~bot.dialogue.answerer.FaqAnswerer` (its own text, or generated from the passages);
a chosen intent with its response and the passage it states as citation. An abstention, or
a generated answer that declines, passes to the fallback stage (clarify, offer a person).
Without a learned policy (``answers.policy: threshold``) the best passage above
``faq.answer_threshold`` is answered.
"""

from __future__ import annotations

import asyncio
import dataclasses

from adapters.answering.answer_policy import AnswerPolicy, Decision
from adapters.answering.evidence import Candidate, content_words
from bot.dialogue.answerer import citation
from bot.dialogue.follow_up import contextual_query, is_follow_up, previous_question, topic_of
from bot.dialogue.multi_part import leans_on_previous, question_parts
from bot.dialogue.stages.fallback import escalate
from bot.dialogue.stages.intent import clarify_options, intent_title
from bot.dialogue.turn import Parts, Turn, rendered_reply
from foundation.messages import BotReply, Citation, ReplyHook, ReplyStream
from retrieval.index import Hit

MIN_PART_WORDS = 2  # content words for a part the bot cannot answer to be named
SURE_ALONE = 0.9  # a short later part is answered alone from this probability (else read with
# the part before it); chosen on a development set of 20 two-part questions (benchmarks/README)


async def faq(turn: Turn, parts: Parts) -> ReplyStream | BotReply | None:
    faq_settings, dialogue = parts.config.faq, parts.config.dialogue
    if faq_settings is None:
        return None
    query = turn.text
    if dialogue.follow_up and turn.session.history:
        query = await contextual_query(turn.session, turn.text, retrieve=turn.hits,
                                       threshold=faq_settings.answer_threshold,
                                       max_words=dialogue.follow_up_max_words)
    hits = await turn.hits(query)
    policy = parts.answerer.policy
    if policy is None:
        return _declining(turn, parts,
                          await parts.answerer.answer(turn.session, turn.text, hits))
    decision = _decide(policy, turn, parts, query, hits)
    previous = previous_question(turn.session) if dialogue.follow_up else None
    if previous and query == turn.text and decision.action != "answer" and \
            is_follow_up(turn.text, max_words=dialogue.follow_up_max_words):
        # "what about the fees?" after a question: with the whole question, and with its
        # topic alone ("international transfer"), whose own ask would pull the old answer
        topic = topic_of(previous)
        for combined in dict.fromkeys([f"{previous} {turn.text}",
                                       f"{turn.text} {topic}" if topic else ""]):
            if not combined:
                continue
            combined_hits = await turn.hits(combined)
            with_context = _decide(policy, turn, parts, combined, combined_hits)
            if _best_probability(with_context) > _best_probability(decision):
                query, hits, decision = combined, combined_hits, with_context
    if parts.config.answers.multi_part and query == turn.text:
        split = await _multi_part(policy, turn, parts, decision)
        if split is not None:
            return split
    if decision.action == "clarify":
        return _with(clarify(parts, decision.options), decision)
    if decision.action != "answer" or decision.best is None:
        turn.decision = decision
        return None
    best = decision.best
    if best.kind == "intent":
        return _with(intent_answer(parts, turn, best, hits), decision)
    foreign = turn.language is not None and turn.language != parts.config.languages.code
    stream = await parts.answerer.answer(turn.session, turn.text, _first(hits, best.target),
                                         decided=True, quote=foreign)
    if stream is None:
        return None
    return _declining(turn, parts, stream.on_reply(_tagger(decision)))


def _best_probability(decision: Decision) -> float:
    return decision.best.probability if decision.best is not None else 0.0


def _first(hits: list[Hit], passage_id: str) -> list[Hit]:
    """``hits`` with the chosen passage first."""
    return sorted(hits, key=lambda h: h.passage.id != passage_id)


def _decide(policy: AnswerPolicy, turn: Turn, parts: Parts, query: str,
            hits: list[Hit]) -> Decision:
    analysis = turn.analysis
    intent = analysis.intent if analysis is not None and query == turn.text else None
    return policy.decide(query, hits, intent, parts.answerable)


def _declining(turn: Turn, parts: Parts, stream: ReplyStream | None) -> ReplyStream | None:
    if stream is None:
        return None

    async def declined(reply: BotReply) -> BotReply:
        return escalate(turn, parts, reply) if reply.kind == "fallback" else reply

    return stream.on_reply(declined)


def _tagger(decision: Decision) -> ReplyHook:
    async def tag(reply: BotReply) -> BotReply:
        return _with(reply, decision)
    return tag


def _with(reply: BotReply, decision: Decision) -> BotReply:
    best = decision.best
    confidence = round(best.probability, 4) if best is not None else reply.confidence
    return dataclasses.replace(reply, decision={**(reply.decision or {}), **decision.evidence()},
                               confidence=confidence)


def intent_answer(parts: Parts, turn: Turn, chosen: Candidate, hits: list[Hit]) -> BotReply:
    """An intent's canned response, citing the passage it states (if it is linked to one)."""
    reply = rendered_reply(parts.response(parts.intents[chosen.target].response or "",
                                          turn.session), "intent")
    cited = _linked_citation(parts, chosen.target, hits)
    return dataclasses.replace(reply, intent=chosen.target,
                               citations=(cited,) if cited is not None else ())


def _linked_citation(parts: Parts, intent: str, hits: list[Hit]) -> Citation | None:
    policy, knowledge = parts.answerer.policy, parts.answerer.knowledge
    passage_id = policy.evidence.links.get(intent) if policy is not None else None
    if passage_id is None or knowledge is None:
        return None
    passage = knowledge.index.get(passage_id)
    if passage is None:
        return None
    return citation(Hit(passage, next((h.score for h in hits if h.passage.id == passage_id),
                                      0.0)))


def clarify(parts: Parts, options: tuple[Candidate, ...]) -> BotReply:
    """ "Did you mean A or B?" between two candidates: an intent's button selects it, a
    passage's button sends its question again."""
    return clarify_options(parts, [_option(parts, c) for c in options[:2]])


def _option(parts: Parts, candidate: Candidate) -> tuple[str, str]:
    """A candidate's title and button payload."""
    if candidate.kind == "intent":
        return intent_title(parts, candidate.target), candidate.target
    knowledge = parts.answerer.knowledge
    passage = knowledge.index.get(candidate.target) if knowledge is not None else None
    title = candidate.target if passage is None else \
        (passage.question or passage.title or passage.id).rstrip("?")
    return title, f"{title}?"


ORDINALS = ("first", "second", "third", "fourth", "fifth")


def part_name(index: int, count: int) -> str:
    """How a reply names part ``index`` (0-based) of a ``count``-part question, without
    quoting it: "the second part of your question", "the last part of your question"."""
    if index == count - 1 and count > 2:
        name = "the last part"
    elif index < len(ORDINALS):
        name = f"the {ORDINALS[index]} part"
    else:
        name = f"part {index + 1}"
    return f"{name} of your question"


async def _decide_part(policy: AnswerPolicy, turn: Turn, parts: Parts,
                       query: str) -> tuple[Decision, list[Hit]]:
    """One part's decision (with its own intent) and its hits."""
    hits = await turn.hits(query)
    verdict = None
    if parts.analyzer is not None:
        verdict = (await asyncio.to_thread(parts.analyzer.analyze, query)).intent
    return policy.decide(query, hits, verdict, parts.answerable), list(hits)


async def _multi_part(policy: AnswerPolicy, turn: Turn, parts: Parts,
                      whole: Decision) -> BotReply | None:
    """Each part of a several-question message answered on its own, when the parts ask
    for different answers (or one part cannot be answered); else None."""
    questions = question_parts(turn.text)
    if len(questions) < 2:
        return None
    decided = []
    for n, question in enumerate(questions):
        # "... and how much does it cost?" asks about the part before; so does a short part
        # the bot is not sure of alone ("Is there a fee?", "What should I do?")
        with_previous = f"{questions[n - 1]} {question}" if n else question
        follows = n > 0 and is_follow_up(question,
                                     max_words=parts.config.dialogue.follow_up_max_words)
        decision, hits = await _decide_part(policy, turn, parts,
                                            with_previous if follows else question)
        if n and not follows and leans_on_previous(question) and \
                (decision.best is None or decision.best.probability < SURE_ALONE):
            decision, hits = await _decide_part(policy, turn, parts, with_previous)
        decided.append((question, decision, hits))
    answered = [(q, d, h) for q, d, h in decided if d.action == "answer" and d.best]
    targets = {d.best.target for _, d, _ in answered if d.best is not None}
    missing = [q for q, d, _ in decided if d.action != "answer"
               and len(content_words(q)) >= MIN_PART_WORDS]
    if not answered or (len(targets) < 2 and not missing):
        return None
    if len(targets) == 1 and whole.action == "answer" and whole.best is not None \
            and whole.best.target in targets and not missing:
        return None
    texts: list[str] = []
    citations: list[Citation] = []
    seen: set[str] = set()
    for question, decision, hits in answered:
        best = decision.best
        assert best is not None
        if best.target in seen:
            continue
        seen.add(best.target)
        reply = intent_answer(parts, turn, best, hits) if best.kind == "intent" else \
            await parts.answerer.exact_answer(question, _first(hits, best.target), decided=True)
        if reply is None:
            continue
        texts.append(reply.text)
        citations.extend(reply.citations)
    for question in missing:
        texts.append(parts.config.answers.unknown_part.format(
            part=part_name(questions.index(question), len(questions))))
    evidence = {"action": "answer_parts", "parts": [
        {"question": q, **d.evidence()} for q, d, _ in decided]}
    probability = min(d.best.probability for _, d, _ in answered if d.best is not None)
    return BotReply(text="\n\n".join(texts), citations=tuple(citations), kind="faq",
                    confidence=round(probability, 4), decision=evidence)
