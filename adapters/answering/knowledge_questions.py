"""Training questions for the answer policy made from the knowledge itself, so that a plain FAQ
(entries without ``alternatives``, no intents: how most teams write one) still gets a learned
decision.

Each FAQ entry with a question is asked that question, verbatim and ``REORDERINGS`` times
with its words shuffled, each twice:

- with the entry's question row left out of the index: the entry is then found through its
  other rows ("question + answer", its alternatives), as a customer's rewording of the
  question finds it (on a development split of StackFAQ the top score, its lead over the
  next entry and how often the entry comes first match those of held-out user paraphrases);
  the entry is right;
- with the whole entry left out: a question the FAQ does not cover; nothing is right
  (weighed ``UNCOVERED_WEIGHT``, as an alternative asked so).

Each question's evidence (``evidence.py``) is taken as if the entry's question were not
written: its words count neither as the bot's vocabulary nor as the entry's own, as a
stranger's words would not. A bot without an intent classifier also learns from the
packaged out-of-scope messages searched against the whole index (nothing right; together
``OFF_TOPIC_SHARE`` of the other questions' count).

Entries with alternatives are asked through those (``policy_data``) and, in a bot without
intents, their own question too (``WITH_ALTERNATIVES``): that lowered the wrong answers on
StackFAQ's development split and then on StackFAQ; in acme_bank, a bot with intents, it
cost right answers and let a FAQ entry beside an intent take the intent's answer in a
shipped conversation, so a bot with intents keeps asking those entries through their
alternatives only.

No question is scored by a model that saw it: the bot's FAQ encoder tunes only on entries
with two wordings or more, so an entry without alternatives is asked with the bot's own
encoder and index; an entry with alternatives is asked in the cross-fitted fold whose
encoder was tuned without it (``policy_data._fold_searches``).

Chosen on a development split of StackFAQ (benchmarks/README.md, "Answer trust"): answer
sentences asked as questions, word dropout and a larger off-topic share each answered more
right only with more wrong, along the same line as these settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from adapters.answering.answer_policy import Example
from adapters.answering.evidence import Candidate, EvidenceBuilder, passage_texts, word_counts
from adapters.answering.masked_search import MaskedSearch
from adapters.classifiers.intents import IntentPrediction, background_examples
from retrieval.documents import Passage
from retrieval.embedder import Embedder
from retrieval.index import Hit

REORDERINGS = 2  # the question asked again with its words shuffled, this many times
UNCOVERED_WEIGHT = 0.5  # a question asked with its entry left out, as for alternatives
OFF_TOPIC_SHARE = 0.05  # of the other questions' count, all off-topic messages together
WITH_ALTERNATIVES = True  # in a bot without intents, entries with alternatives too


@dataclass(frozen=True)
class Asked:
    """One question made from the entry at ``owner``: its ``text``, the rows its covered
    search leaves out (``without``: the entry's question row) and the entry as if its
    question were not written (``unwritten``)."""

    owner: int
    kind: str  # "question" or "reordered"
    text: str
    without: np.ndarray
    unwritten: Passage


def knowledge_entries(passages: Sequence[Passage], *, intents: bool) -> list[int]:
    """The entries asked their own question: those with a question and no alternatives; in
    a bot without ``intents``, those with alternatives too (``WITH_ALTERNATIVES``)."""
    also = WITH_ALTERNATIVES and not intents
    return [n for n, p in enumerate(passages) if p.question and (also or not p.alternatives)]


def knowledge_questions(search: MaskedSearch, entries: Sequence[int], *,
                        seed: int = 0) -> list[Asked]:
    """The questions each of ``entries`` (positions in the index) is asked with."""
    rng = np.random.default_rng(seed)
    texts = np.asarray(search.texts, dtype=object)
    asked: list[Asked] = []
    for owner in entries:
        passage = search.index.passages[owner]
        question = passage.question or ""
        own_row = search.rows_of(owner) & (texts == question)
        untitled = "" if passage.title == question else passage.title
        unwritten = replace(passage, question=None, title=untitled)
        asked.append(Asked(owner, "question", question, own_row, unwritten))
        asked += [Asked(owner, "reordered", reordered(question, rng), own_row, unwritten)
                  for _ in range(REORDERINGS)]
    return asked


def reordered(text: str, rng: np.random.Generator) -> str:
    """``text`` with its words shuffled."""
    words = text.split()
    return " ".join(words[i] for i in rng.permutation(len(words)))


def knowledge_examples(asked: Sequence[Asked], search: MaskedSearch, embedder: Embedder,
                       verdicts: Sequence[IntentPrediction | None], evidence: EvidenceBuilder,
                       answerable: set[str], right_of: Mapping[str, frozenset[str]],
                       k: int) -> list[Example]:
    """Each question asked with its entry in the index (right: ``right_of`` the entry's id)
    and with the entry left out (nothing right), its vector from ``embedder`` searched in
    ``search`` (the same encoder's vectors)."""
    if not asked:
        return []
    examples: list[Example] = []
    vectors = embedder.embed([a.text for a in asked])
    for question, vector, verdict in zip(asked, vectors, verdicts, strict=True):
        original = search.index.passages[question.owner]
        unwritten = unwritten_evidence(evidence, [(original, question.unwritten)])
        hits = search.search(vector, k, without=question.without)
        examples.append(Example(_candidates(unwritten, question, hits, verdict, answerable),
                                right_of[original.id]))
        hits = search.search(vector, k, without=search.rows_of(question.owner))
        examples.append(Example(_candidates(unwritten, question, hits, verdict, answerable),
                                frozenset(), UNCOVERED_WEIGHT))
    return examples


def off_topic_examples(search: MaskedSearch, embedder: Embedder, evidence: EvidenceBuilder,
                       answerable: set[str], k: int, questions: int) -> list[Example]:
    """The packaged out-of-scope messages searched against the whole index with no intent
    classifier: nothing is right; together they weigh ``OFF_TOPIC_SHARE`` of ``questions``."""
    texts = background_examples()
    if not texts or not questions:
        return []
    weight = OFF_TOPIC_SHARE * questions / len(texts)
    return [Example(tuple(evidence.candidates(text, search.search(vector, k), None,
                                              answerable)), frozenset(), weight)
            for text, vector in zip(texts, embedder.embed(texts), strict=True)]


class _Rewritten(Counter[str]):
    """A vocabulary (word -> number of texts) with one entry written otherwise, read
    through: every word is looked up in ``known`` and corrected by ``change``."""

    def __init__(self, known: Counter[str], change: Counter[str]) -> None:
        super().__init__()
        self.known, self.change = known, change

    def __missing__(self, word: str) -> int:
        return max(0, self.known[word] + self.change[word])


def unwritten_evidence(evidence: EvidenceBuilder,
                       rewritten: Sequence[tuple[Passage, Passage]]) -> EvidenceBuilder:
    """The bot's evidence as if its FAQ held each pair's second passage instead of its first."""
    change: Counter[str] = Counter()
    for original, unwritten in rewritten:
        change.update(word_counts(passage_texts(unwritten)))
        change.subtract(word_counts(passage_texts(original)))
    return EvidenceBuilder(_Rewritten(evidence.known, change), evidence.intent_words,
                           evidence.links)


def _candidates(evidence: EvidenceBuilder, asked: Asked, hits: list[Hit],
                verdict: IntentPrediction | None, answerable: set[str]) -> tuple[Candidate, ...]:
    """The candidates of one question, its entry's words without its question."""
    hits = [Hit(asked.unwritten, h.score) if h.passage.id == asked.unwritten.id else h
            for h in hits]
    return tuple(evidence.candidates(asked.text, hits, verdict, answerable))
