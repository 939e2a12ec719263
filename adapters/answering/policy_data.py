"""Training questions for the answer policy, made from the bot's own data (no labels needed).

- Each FAQ entry's ``alternatives``, each searched with its own vector left out of the index
  (an unseen paraphrase): right = the entry (and the intents linked to it). The same
  question searched with the whole entry left out stands for a question the FAQ does not
  cover: nothing is right. With a FAQ encoder tuned on those alternatives, each is embedded
  by an encoder tuned without it (cross-fitted folds), as a customer's question would be.
- FAQ entries' own questions (verbatim and reordered), asked with the question row left
  out (covered) and with the whole entry left out (uncovered), so that a plain FAQ (no
  alternatives: how most teams write one) has questions too: every entry without
  alternatives, and in a bot without intents every entry; for a bot without intents, the
  packaged out-of-scope messages too (``knowledge_questions.py``).
- In a bot without intents, each document section's heading, asked with the section scored
  by its text alone and with it left out (``section_questions.py``).
- The intent examples, in folds: each fold's classifier is trained without a fifth of every
  intent's examples and without a fifth of the intents altogether; the held-out examples
  are classified and searched. Right: their intent when it was trained (and answers with a
  response), the passage it is linked to.
- The packaged out-of-scope messages, in the same folds: nothing is right.

Intents are linked to the passage their response states: ``faq:`` in the intent, else the
passage most of its examples retrieve first (at least half of them, mean score >= 0.5).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters.answering.answer_policy import AnswerPolicy, Example, policy_artifact
from adapters.answering.evidence import Candidate, EvidenceBuilder, passage_texts, word_counts
from adapters.answering.knowledge_questions import (
    UNCOVERED_WEIGHT,
    knowledge_entries,
    knowledge_examples,
    knowledge_questions,
    off_topic_examples,
)
from adapters.answering.masked_search import MaskedSearch
from adapters.answering.section_questions import document_sections, section_examples
from adapters.classifiers.intents import (
    OUT_OF_SCOPE,
    IntentClassifier,
    IntentPrediction,
    background_examples,
)
from adapters.errors import ModelError, NotTrainedError
from adapters.settings import AnswerSettings, ClassifierSettings
from retrieval.artifacts import digest
from retrieval.documents import Passage
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex, Hit

FOLDS = 5
MIN_QUESTIONS = 20  # fewer training questions: answer by ``faq.answer_threshold`` instead
MIN_ANSWERABLE = 10  # or fewer of them with a right answer
QUESTIONS_VERSION = 7  # how the training questions are made: a new one means learning again
BACKGROUND_SHARE = 0.2  # of all training questions' weight
LINK_SHARE, LINK_SCORE = 0.5, 0.5
KINDS = {"question": "entry questions", "reordered": "reordered entry questions"}
Refit = Callable[[Sequence[Passage]], Embedder]  # an encoder tuned on these FAQ entries
Place = tuple[MaskedSearch, Embedder]  # where a question is asked: a search, its encoder


@dataclass(frozen=True)
class IntentUse:
    """An intent as the policy sees it: its examples, whether it answers with a canned
    response, whether it acts instead (a form, an HTTP action, a handoff: the policy does
    not decide those) and its explicit FAQ link."""

    name: str
    examples: tuple[str, ...]
    response: bool = False
    acts: bool = False
    faq: str | None = None

    @property
    def answers(self) -> bool:
        return self.response and not self.acts


def policy_fingerprint(index: FaqIndex, uses: Sequence[IntentUse],
                       classifier: IntentClassifier | None, answers: AnswerSettings,
                       k: int) -> dict[str, Any]:
    """What a trained policy depends on; any change means it is learned again."""
    built = {key: index.manifest.get(key) for key in ("model", "chunking", "sources")}
    content = {"index": built, "intents": [dataclasses.asdict(u) for u in uses],
               "classifier": classifier.manifest.get("examples_sha256") if classifier else None,
               "answers": dataclasses.asdict(answers), "top_k": k,
               "questions": QUESTIONS_VERSION}
    return {"policy_sha256": digest(content)}


def train_policy(directory: Path, index: FaqIndex, embedder: Embedder,
                 uses: Sequence[IntentUse], classifier: IntentClassifier | None,
                 settings: ClassifierSettings, answers: AnswerSettings, *, k: int,
                 refit: Refit | None = None, force: bool = False) -> tuple[AnswerPolicy, bool]:
    """Learn (or reuse) the bot's answer policy in ``directory``; returns it and whether it
    was learned anew. ``refit``: how ``embedder`` was tuned on the FAQ, to tune it again
    without the questions each fold asks (``_searches``)."""
    wanted = policy_fingerprint(index, uses, classifier, answers, k)
    if not force and policy_artifact(directory).is_current(wanted):
        try:
            return AnswerPolicy.load(directory, wanted), False
        except (NotTrainedError, ModelError):
            pass  # damaged: learn again below
    links = intent_links(uses, index, embedder, k)
    evidence = evidence_for(uses, index, links)
    found = policy_examples(index, embedder, uses, classifier, settings, evidence, k=k,
                            unanswerable_share=answers.unanswerable_share, refit=refit)
    examples = found.examples
    reason = too_little(found, index)
    if reason:  # too little to learn from: the cosine threshold
        policy = AnswerPolicy({}, 1.0, evidence, {"examples": len(examples),
                                                  "not_learned": reason})
    else:
        policy = AnswerPolicy.fit(examples, evidence, max_wrong_rate=answers.max_wrong_rate)
    policy.manifest.update(links=len(links), questions=found.counts)
    policy.save(directory, wanted)
    return policy, True


def intent_links(uses: Sequence[IntentUse], index: FaqIndex, embedder: Embedder,
                 k: int) -> dict[str, str]:
    """Each intent's passage: explicit, or the one most of its examples retrieve first."""
    links = {u.name: u.faq for u in uses if u.faq}
    for name, passage in links.items():
        if index.get(passage) is None:
            raise ModelError(f"intents: {name}: faq: {passage!r} is no FAQ entry's id")
    search = MaskedSearch(index)
    for use in uses:
        if use.name in links or use.acts or not use.examples:
            continue
        hits = [search.search(v, 1) for v in embedder.embed(list(use.examples))]
        firsts = Counter(h[0].passage.id for h in hits if h)
        if not firsts:
            continue
        passage, count = firsts.most_common(1)[0]
        scores = [h[0].score for h in hits if h and h[0].passage.id == passage]
        if count >= LINK_SHARE * len(use.examples) and float(np.mean(scores)) >= LINK_SCORE:
            links[use.name] = passage
    return links


def evidence_for(uses: Sequence[IntentUse], index: FaqIndex,
                 links: Mapping[str, str]) -> EvidenceBuilder:
    """The bot's vocabulary (FAQ and intent examples), each intent's words and links."""
    texts = [t for p in index.passages for t in passage_texts(p)]
    texts += [e for u in uses for e in u.examples]
    return EvidenceBuilder(word_counts(texts),
                           {u.name: word_counts(dict.fromkeys(u.examples)) for u in uses},
                           dict(links))


@dataclass(frozen=True)
class TrainingSet:
    """The policy's training questions and how many of each kind (``counts``: with a right
    answer "alternatives", "entry questions", "reordered entry questions" and "intent
    examples"; "uncovered": FAQ questions asked with their entry left out; "off-topic")."""

    examples: list[Example]
    counts: dict[str, int]

    @property
    def answerable(self) -> int:
        """How many different questions have a right answer (reorderings not counted)."""
        return sum(1 for e in self.examples if e.right) - \
            self.counts.get(KINDS["reordered"], 0)


def too_little(found: TrainingSet, index: FaqIndex) -> str | None:
    """Why ``found`` is too little to learn a decision from (None: enough)."""
    if found.answerable >= MIN_ANSWERABLE and len(found.examples) >= MIN_QUESTIONS:
        return None
    if not any(p.question for p in index.passages) and not found.answerable:
        return ("the FAQ holds documents only (no entry has a question to ask it with) and "
                "no intent examples answer anything")
    if found.answerable < MIN_ANSWERABLE:
        return (f"only {found.answerable} questions with a right answer (at least "
                f"{MIN_ANSWERABLE} are needed: FAQ entries, their alternatives, intent "
                "examples)")
    return f"only {len(found.examples)} questions (at least {MIN_QUESTIONS} are needed)"


def policy_examples(index: FaqIndex, embedder: Embedder, uses: Sequence[IntentUse],
                    classifier: IntentClassifier | None, settings: ClassifierSettings,
                    evidence: EvidenceBuilder, *, k: int, unanswerable_share: float = 0.2,
                    refit: Refit | None = None, seed: int = 0) -> TrainingSet:
    """Every training question with its candidates and what is right for it."""
    answerable = {u.name for u in uses if u.answers}
    by_passage: dict[str, set[str]] = {}
    for name, passage in evidence.links.items():
        if name in answerable:
            by_passage.setdefault(passage, set()).add(f"intent:{name}")
    counts: Counter[str] = Counter()
    examples, places = _faq_examples(index, classifier, evidence, answerable, by_passage, k,
                                     refit)
    counts.update(alternatives=len(examples) // 2, uncovered=len(examples) // 2)
    search = MaskedSearch(index)
    right_of = {p.id: frozenset({f"faq:{p.id}", *by_passage.get(p.id, ())})
                for p in index.passages}
    asked_in: dict[int, tuple[Place, list[int]]] = {}  # entries asked in the same place
    for owner in knowledge_entries(index.passages, intents=classifier is not None):
        place = places.get(owner, (search, embedder))
        asked_in.setdefault(id(place[0]), (place, []))[1].append(owner)
    asked = []
    for (where, encoder), entries in asked_in.values():
        questions = knowledge_questions(where, entries, seed=seed)
        examples += knowledge_examples(questions, where, encoder,
                                       _classify(classifier, [a.text for a in questions]),
                                       evidence, answerable, right_of, k)
        asked += questions
    counts.update(KINDS[a.kind] for a in asked)
    counts.update(uncovered=len(asked))
    sections = document_sections(index.passages) if classifier is None else []
    headings = section_examples(sections, search, embedder, evidence, k)
    examples += headings
    counts.update({"section headings": len(headings) // 2, "uncovered": len(headings) // 2})
    if classifier is not None:
        found, off_topic = _intent_examples(index, embedder, uses, classifier, settings,
                                            evidence, answerable, k, seed)
        examples += found
        counts.update({"intent examples": len(found) - off_topic, "off-topic": off_topic})
    elif asked or headings:  # no classifier to learn strangers from: packaged off-topic
        found = off_topic_examples(search, embedder, evidence, answerable, k, len(examples))
        examples += found
        counts.update({"off-topic": len(found)})
    order = ("alternatives", *KINDS.values(), "section headings", "intent examples", "uncovered",
             "off-topic")
    return TrainingSet(reweighed(examples, unanswerable_share),
                       {kind: counts[kind] for kind in order if counts[kind]})


def reweighed(examples: list[Example], share: float) -> list[Example]:
    """``examples`` with the unanswerable ones weighed to ``share`` of the total weight."""
    negative = sum(e.weight for e in examples if not e.right)
    positive = sum(e.weight for e in examples if e.right)
    if not negative or not positive:
        return examples
    scale = share * positive / ((1 - share) * negative)
    return [e if e.right else dataclasses.replace(e, weight=e.weight * scale)
            for e in examples]


def _faq_examples(index: FaqIndex, classifier: IntentClassifier | None,
                  evidence: EvidenceBuilder, answerable: set[str],
                  by_passage: Mapping[str, set[str]], k: int,
                  refit: Refit | None = None,
                  ) -> tuple[list[Example], dict[int, Place]]:
    """The alternatives asked as covered and as uncovered questions; and, for each entry
    with alternatives, where its own question may be asked (``Place``: the search and the
    encoder of the fold that left the entry out, or none when the encoder is not tuned)."""
    search = MaskedSearch(index)
    queries: list[tuple[int, int]] = []  # (row of the alternative, owner)
    for row, (text, owner) in enumerate(zip(search.texts, search.owners, strict=True)):
        passage = index.passages[int(owner)]
        if passage.question and text in passage.alternatives:
            queries.append((row, int(owner)))
    if not queries:
        return [], {}
    texts = [search.texts[row] for row, _ in queries]
    verdicts = _classify(classifier, texts)
    covered_in, uncovered_in, places = _fold_searches(index, search, queries, refit)
    examples: list[Example] = []
    for (row, owner), text, verdict in zip(queries, texts, verdicts, strict=True):
        passage_id = index.passages[owner].id
        alone = np.zeros(len(search.texts), dtype=bool)
        alone[row] = True
        fold = covered_in[row]
        hits = fold.search(fold.vectors[row], k, without=alone)
        right = frozenset({f"faq:{passage_id}", *by_passage.get(passage_id, ())})
        examples.append(Example(_candidates(evidence, text, hits, verdict, answerable), right))
        fold = uncovered_in[row]
        hits = fold.search(fold.vectors[row], k, without=fold.owners == owner)
        examples.append(Example(_candidates(evidence, text, hits, verdict, answerable),
                                frozenset(), UNCOVERED_WEIGHT))
    return examples, places


def _fold_searches(index: FaqIndex, search: MaskedSearch, queries: Sequence[tuple[int, int]],
                   refit: Refit | None,
                   ) -> tuple[dict[int, MaskedSearch], dict[int, MaskedSearch], dict[int, Place]]:
    """For each alternative's row, the search it is asked in as a covered question and as
    an uncovered one; and for each entry, the fold (search and encoder) that left it out.
    Without ``refit``: the index's own vectors. With it (a tuned encoder),
    cross-fitted: in fold f the encoder is tuned without the entries of fold f and without
    the alternatives of fold f; an alternative is asked as covered in its own fold (never
    its entry's) and as uncovered in its entry's, so no question was seen by its encoder.
    Folds are drawn from the entry's id and the alternative's text, not their positions, so
    knowledge added to the FAQ leaves every other question in the fold it had."""
    if refit is None:
        return {row: search for row, _ in queries}, {row: search for row, _ in queries}, {}
    entry_fold = {owner: _draw(index.passages[owner].id, FOLDS) for _, owner in queries}
    alternative_fold = {row: (entry_fold[owner] + 1 + _draw(search.texts[row], FOLDS - 1))
                        % FOLDS for row, owner in queries}
    covered_in: dict[int, MaskedSearch] = {}
    uncovered_in: dict[int, MaskedSearch] = {}
    places: dict[int, Place] = {}
    for fold in range(FOLDS):
        left_out = {search.texts[row] for row, f in alternative_fold.items() if f == fold}
        kept = [dataclasses.replace(p, alternatives=tuple(a for a in p.alternatives
                                                          if a not in left_out))
                for n, p in enumerate(index.passages) if entry_fold.get(n) != fold]
        encoder = refit(kept)
        folded = MaskedSearch(index, encoder.embed(search.texts))
        for row, owner in queries:
            if alternative_fold[row] == fold:
                covered_in[row] = folded
            if entry_fold[owner] == fold:
                uncovered_in[row] = folded
                places[owner] = (folded, encoder)
    return covered_in, uncovered_in, places


def _draw(key: str, count: int) -> int:
    """A number in ``range(count)`` that depends on ``key`` alone."""
    return zlib.crc32(key.encode("utf-8")) % count


def _intent_examples(index: FaqIndex, embedder: Embedder, uses: Sequence[IntentUse],
                     classifier: IntentClassifier, settings: ClassifierSettings,
                     evidence: EvidenceBuilder, answerable: set[str], k: int,
                     seed: int) -> tuple[list[Example], int]:
    """The intent examples and packaged out-of-scope messages asked in folds; and how many
    of them were out-of-scope messages."""
    rng = np.random.default_rng(seed)
    rows = [(text, u.name) for u in uses for text in dict.fromkeys(u.examples)]
    background = background_examples() if settings.builtin_out_of_scope else []
    texts = [t for t, _ in rows] + background
    labels = [name for _, name in rows] + [OUT_OF_SCOPE] * len(background)
    fold = rng.integers(0, FOLDS, len(texts))
    names = sorted({u.name for u in uses})
    removed = {name: int(g) for name, g in zip(names, rng.permutation(len(names)) % FOLDS,
                                               strict=True)}
    own = classifier.embedder.embed(texts)  # the classifier's (maybe tuned) encoder
    shared = own if not classifier.tuned else embedder.embed(texts)
    search = MaskedSearch(index)
    # examples whose right answer the policy cannot know: acting intents, and topic-only
    # intents (no response) linked to no passage
    unknown = {u.name for u in uses if u.acts or not (u.answers or u.name in evidence.links)}
    examples: list[Example] = []
    off_topic = 0
    for k_fold in range(FOLDS):
        train = [i for i, label in enumerate(labels)
                 if fold[i] != k_fold and removed.get(label, -1) != k_fold]
        kept = set(train)
        test = [i for i, label in enumerate(labels) if i not in kept and label not in unknown]
        if len({labels[i] for i in train}) < 2 or not test:
            continue
        model = IntentClassifier.fit([texts[i] for i in train], [labels[i] for i in train],
                                     own[train], classifier.embedder, settings=settings,
                                     seed=seed)
        verdicts = model.predict_vectors(own[test], [texts[i] for i in test])
        trained = {labels[i] for i in train}
        background_weight = BACKGROUND_SHARE * len(rows) / max(1, len(background))
        for i, verdict in zip(test, verdicts, strict=True):
            label = labels[i]
            right: set[str] = set()
            if label in answerable and label in trained:
                right.add(f"intent:{label}")
            if label in evidence.links:
                right.add(f"faq:{evidence.links[label]}")
            hits = search.search(shared[i], k)
            off_topic += label == OUT_OF_SCOPE
            examples.append(Example(
                _candidates(evidence, texts[i], hits, verdict, answerable,
                            own=label != OUT_OF_SCOPE), frozenset(right),
                background_weight if label == OUT_OF_SCOPE else 1.0))
    return examples, off_topic


def _classify(classifier: IntentClassifier | None,
              texts: list[str]) -> list[IntentPrediction | None]:
    if classifier is None:
        return [None] * len(texts)
    return list(classifier.predict_many(texts))


def _candidates(evidence: EvidenceBuilder, text: str, hits: list[Hit],
                verdict: IntentPrediction | None, answerable: set[str], *,
                own: bool = True) -> tuple[Candidate, ...]:
    """The candidates of one of the bot's own texts (``own``: its words do not count as
    known; False for the background messages, which the bot's data does not hold)."""
    return tuple(evidence.candidates(text, hits, verdict, answerable, own=own))
