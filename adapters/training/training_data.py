"""Training examples for the dialogue adapter, made from the bot's own FAQ.

Every FAQ question and alternative becomes a question whose prompt shows the passages the
index retrieves for it (the right one swapped in if retrieval missed it, order shuffled so
the model has to read rather than cite the first), with the answer plus ``[id]`` as target.
Some questions are paired with unrelated passages, and a few off-topic questions with their
nearest passages, with the "I don't know, want a human?" reply as target. A share of the
examples is preceded by an earlier exchange on another topic, as a conversation's history
appears in the prompt at run time, so the model answers the new question from its passages
instead of repeating its previous answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.engines.prompting import (
    NO_ANSWER,
    PROMPT_VERSION,
    PromptTurn,
    answer_target,
    build_messages,
)
from adapters.settings import Persona
from retrieval.artifacts import digest
from retrieval.documents import Passage
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex

OFF_TOPIC = (
    "What will the weather be like tomorrow?",
    "Can you recommend a good pizza place near me?",
    "Who won the football match last night?",
    "Write me a poem about the sea.",
    "What is the capital of Australia?",
    "How do I bake sourdough bread?",
)
HISTORY_SHARE = 0.3  # of the examples, preceded by one earlier exchange


@dataclass(frozen=True)
class Example:
    """One supervised turn: a question, the passages in its prompt and the answer to learn."""

    question: str
    passages: tuple[Passage, ...]
    target: str
    gold: str | None  # the passage id the answer cites; None for "no answer" examples
    history: tuple[PromptTurn, ...] = ()  # earlier messages of the conversation


@dataclass(frozen=True)
class TaughtAnswer:
    """A customer's question a person answered from FAQ entry ``entry``: learned with the
    person's ``wording`` (None: the entry's own answer), ``weight`` times."""

    question: str
    entry: str
    wording: str | None = None
    weight: int = 1


def build_examples(index: FaqIndex, embedder: Embedder, *, top_k: int, threshold: float,
                   no_answer_ratio: float, seed: int,
                   taught: Sequence[TaughtAnswer] = ()) -> list[Example]:
    """Answer and no-answer examples from the index's FAQ (and the ``taught`` answers of
    entries it has), deterministic for a ``seed``.

    Each question is shown with its ``top_k`` passages; a share ``no_answer_ratio`` of
    no-answer examples shows passages below ``threshold``.
    """
    ratio = no_answer_ratio
    rng = random.Random(seed)
    pairs = [(q, p) for p in index.passages if p.question
             for q in dict.fromkeys([p.question, *p.alternatives])]
    if not pairs:
        return []
    repeated = [(t, gold) for t in taught if (gold := index.get(t.entry)) is not None
                for _ in range(t.weight)]
    asked = pairs + [(t.question, gold) for t, gold in repeated]
    targets = [answer_target(gold) for _, gold in pairs] + [
        f"{t.wording.strip()} [{gold.id}]" if t.wording else answer_target(gold)
        for t, gold in repeated]
    vectors = embedder.embed([q for q, _ in asked])
    examples: list[Example] = []
    related: list[set[str]] = []
    for (question, gold), target, vector in zip(asked, targets, vectors, strict=True):
        hits = index.search_vector(vector, top_k)
        shown = [h.passage for h in hits]
        if gold.id not in {p.id for p in shown}:
            shown[-1] = gold
        rng.shuffle(shown)
        examples.append(Example(question, tuple(shown), target, gold.id))
        if len(related) < len(pairs):
            related.append({gold.id} | {h.passage.id for h in hits if h.score >= threshold})
    wanted = round(len(examples) * ratio / (1.0 - ratio)) if ratio < 1.0 else len(examples)
    off_topic = list(OFF_TOPIC[: max(0, min(len(OFF_TOPIC), wanted // 3))])
    for question in off_topic:
        hits = index.search_vector(embedder.embed([question])[0], top_k)
        examples.append(Example(question, tuple(h.passage for h in hits), NO_ANSWER, None))
    for _ in range(wanted - len(off_topic)):
        n = rng.randrange(len(pairs))
        question, gold = pairs[n]
        others = [p for p in index.passages if p.id not in related[n]] or \
            [p for p in index.passages if p.id != gold.id]
        if not others:
            continue
        shown = rng.sample(others, min(top_k, len(others)))
        examples.append(Example(question, tuple(shown), NO_ANSWER, None))
    return [with_history(e, pairs, rng) if rng.random() < HISTORY_SHARE else e
            for e in examples]


def with_history(example: Example, pairs: Sequence[tuple[str, Passage]],
                 rng: random.Random) -> Example:
    """``example`` after one exchange about another passage (its answer as the bot said it)."""
    shown = {p.id for p in example.passages}
    others = [(q, p) for q, p in pairs if p.id not in shown] or list(pairs)
    question, passage = rng.choice(others)
    history = (PromptTurn("user", question), PromptTurn("assistant", passage.text.strip()))
    return Example(example.question, example.passages, example.target, example.gold, history)


def encode(example: Example, tokenizer: Any, persona: Persona, *, max_length: int,
           max_words: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (prompt masked with -100); drops distractors to fit ``max_length``.

    Returns None when even the answer's own passage does not fit.
    """
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if stop is None or stop == tokenizer.unk_token_id:
        stop = tokenizer.eos_token_id
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [stop]
    passages = list(example.passages)
    while True:
        messages = build_messages(persona, example.question, passages,
                                  history=example.history, max_words=max_words)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=False)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) + len(target) <= max_length:
            return ids + target, [-100] * len(ids) + target
        droppable = [p for p in passages if p.id != example.gold]
        if not droppable or len(passages) <= 1:
            return None
        passages.remove(droppable[-1])


def data_digest(examples: Sequence[Example], persona: Persona, *, max_words: int) -> str:
    """What the adapter learns from: if this changes, it is retrained."""
    payload = {
        "prompt_version": PROMPT_VERSION,
        "persona": [persona.name, persona.description, persona.style],
        "max_words": max_words,
        "examples": [[e.question, [[p.id, p.question, p.title, p.text] for p in e.passages],
                      e.target, [[t.role, t.text] for t in e.history]] for e in examples],
    }
    return digest(payload)
