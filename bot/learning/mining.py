"""Mine past conversations for what the FAQ lacks: new entries, alternatives, intents.

Each conversation gives an :class:`~bot.learning.exchanges.Exchange` (its question and the
agent's reply). Then:

1. **Alternatives.** A question whose agent reply states an existing entry's answer (cosine
   of the reply with the answer text), with no FAQ answer from the bot before it (after one,
   the agent mostly answers a follow-up), while the index does not answer the question with
   that entry (not first, or below ``faq.answer_threshold``): the question's wording becomes
   an alternative of the entry.
2. **Covered.** A question the index answers above the threshold with the entry the agent's
   reply states, or answers with no agent reply to say otherwise, is left alone.
3. **Clusters.** The other questions are clustered (average linkage on the cosine distance
   between question-plus-reply embeddings). A cluster whose agent replies agree with the
   answer of the entry most of its questions retrieve, or whose every question the bot
   answered from the FAQ before an agent took over, is covered; one of ``min_count``
   conversations or more becomes a new entry (the most central question, other wordings as
   alternatives, the agents' consensus reply as the answer), and a large one also an intent
   linked to it. A cluster no agent answered is reported as unanswered.

Private by construction (:mod:`bot.learning.privacy`): the answer is a reply other
conversations' replies agree with, without its sentences holding a name, masked data or a fact
(amount, date, reference) no other conversation's reply states; wordings holding a name or
masked data are left out, and so are those nearer to another entry's questions than to their
own topic (:mod:`bot.learning.collisions`). A cluster with no such answer is withheld."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from bot.learning.collisions import WordingGuard
from bot.learning.exchanges import SMALL_TALK, Exchange, first_question
from bot.learning.privacy import Answer, Names, anonymous, general_answer, vocabulary
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex

__all__ = ["Mined", "MiningSettings", "NewAlternatives", "NewEntry", "NewIntent", "Withheld",
           "first_question", "mine"]

GREETING = re.compile(r"^(?i:hi|hello|hey|hiya|dear \w+)( there)?[,!.]?\s+")
INTENT_EXAMPLES = 5  # short examples an intent needs before long ones are left out
TOPIC_WORDS = 2  # words in a new entry's id, at most
NAME_STOP = ENGLISH_STOP_WORDS | SMALL_TALK | {
    "acme", "bank", "account", "like", "want", "need", "does", "just", "know", "what", "whats",
    "would", "tell", "did", "doe", "ask", "asked", "asking", "question", "wondering"}


@dataclass(frozen=True)
class MiningSettings:
    """How questions are grouped and when a group becomes a suggestion."""

    min_count: int = 3  # conversations a cluster needs to become a new FAQ entry
    intent_count: int = 8  # ... and to become an intent as well
    cluster_distance: float = 0.5  # average-linkage cosine distance (measured on acme_bank)
    consensus: float = 0.5  # mean similarity of a cluster's agent replies: they agree
    reply_match: float = 0.65  # a reply states an entry's answer from this cosine up
    reply_margin: float = 0.1  # ... this far above the answer of the entry the index chose
    alternative_rank: int = 5  # the entry must be among the question's hits this deep
    bot_answer: float = 0.85  # a bot message this close to an entry's answer gave it
    covered_agreement: float = 0.5  # a cluster's replies agreeing this much: the FAQ has it
    max_alternatives: int = 8
    short_words: int = 30  # wordings longer than this (e-mails) are a last resort


@dataclass(frozen=True)
class NewEntry:
    """A suggested FAQ entry and the exchanges it was mined from."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...]
    exchanges: tuple[Exchange, ...]
    removed: tuple[str, ...] = ()  # sentences of the agent's reply left out, and why
    held_back: tuple[str, ...] = ()  # wordings left out (bot.learning.collisions), and why


@dataclass(frozen=True)
class Withheld:
    """A new topic with no answer to suggest without one customer's details, and why."""

    exchanges: tuple[Exchange, ...]
    reason: str


@dataclass(frozen=True)
class NewAlternatives:
    """Wordings the index misses for an existing entry."""

    entry: str
    alternatives: tuple[str, ...]
    exchanges: tuple[Exchange, ...]


@dataclass(frozen=True)
class NewIntent:
    """A suggested intent for a large cluster, linked to its new FAQ entry."""

    name: str
    faq: str
    examples: tuple[str, ...]
    exchanges: tuple[Exchange, ...]


@dataclass(frozen=True)
class Mined:
    """What mining found."""

    entries: tuple[NewEntry, ...] = ()
    alternatives: tuple[NewAlternatives, ...] = ()
    intents: tuple[NewIntent, ...] = ()
    unanswered: tuple[tuple[Exchange, ...], ...] = ()  # clusters no agent replied to
    withheld: tuple[Withheld, ...] = ()


@dataclass
class _Vectors:
    """Each exchange's question and reply embedded once, and the entries' answers."""

    questions: np.ndarray
    replies: np.ndarray  # zero rows where there is no reply
    answers: np.ndarray
    bot_answered: np.ndarray  # bool: the bot gave an FAQ answer before the agent replied


def mine(exchanges: Sequence[Exchange], index: FaqIndex, embedder: Embedder, *,
         threshold: float, settings: MiningSettings = MiningSettings(),
         taken_intents: Sequence[str] = (), cited: Sequence[tuple[str, str]] = ()) -> Mined:
    """Suggestions from ``exchanges`` for the FAQ in ``index`` (answering from
    ``threshold``); new intent names avoid ``taken_intents``; ``cited``: questions the bot
    must go on answering with an entry (:class:`WordingGuard`), as (question, entry id)."""
    if not exchanges:
        return Mined()
    vectors = _embed(exchanges, index, embedder, settings)
    alternatives: dict[str, list[int]] = {}
    rest: list[int] = []
    for i, exchange in enumerate(exchanges):
        place = _place(i, exchange, vectors, index, threshold, settings)
        if place == _REST:
            rest.append(i)
        elif place != _COVERED:
            alternatives.setdefault(place, []).append(i)
    found = _clusters(exchanges, vectors, rest, settings)
    people = Names.learn((e.conversation for e in exchanges), vocabulary(index.passages))
    return _suggestions(exchanges, vectors, index, alternatives, found, settings, taken_intents,
                        people, WordingGuard.build(index, embedder, cited, threshold=threshold))


_COVERED, _REST = "", "\0rest"  # what _place returns besides an entry id


def _place(i: int, exchange: Exchange, vectors: _Vectors, index: FaqIndex, threshold: float,
           settings: MiningSettings) -> str:
    """Where an exchange goes: covered (the index answers it with the entry the reply
    states, or with no reply to say otherwise), an alternative of the entry its reply states
    (returned), or the rest, to cluster."""
    hits = index.search_vector(vectors.questions[i], max(settings.alternative_rank, 1))
    answered = bool(hits) and hits[0].score >= threshold
    if exchange.reply is None:
        return _COVERED if answered else _REST
    scores = vectors.answers @ vectors.replies[i]
    order = np.argsort(-scores)
    if not len(order) or scores[order[0]] < settings.reply_match:
        return _REST
    best = index.passages[order[0]].id
    first = hits[0].passage.id if hits else best
    if first == best and answered:
        return _COVERED
    # the reply states ``best`` clearly better than the entry the index chose (or, when the
    # index chose ``best`` too weakly, than any other entry)
    rival = index.get(first) if first != best else \
        (index.passages[order[1]] if len(order) > 1 else None)
    lead = scores[order[0]] - (scores[index.passages.index(rival)] if rival else 0.0)
    ranked = [h.passage.id for h in hits]
    if lead >= settings.reply_margin and best in ranked and not vectors.bot_answered[i]:
        return best
    return _REST


def _embed(exchanges: Sequence[Exchange], index: FaqIndex, embedder: Embedder,
           settings: MiningSettings) -> _Vectors:
    questions = embedder.embed([e.question for e in exchanges])
    replied = [i for i, e in enumerate(exchanges) if e.reply is not None]
    replies = np.zeros_like(questions)
    if replied:
        replies[replied] = embedder.embed([str(exchanges[i].reply) for i in replied])
    answers = embedder.embed([p.text for p in index.passages])
    said = [(i, text) for i, e in enumerate(exchanges) for text in e.bot_said]
    bot_answered = np.zeros(len(exchanges), dtype=bool)
    if said and len(answers):
        closest = (embedder.embed([text for _, text in said]) @ answers.T).max(axis=1)
        for (i, _), score in zip(said, closest, strict=True):
            bot_answered[i] |= bool(score >= settings.bot_answer)
    return _Vectors(questions, replies, answers, bot_answered)


def _clusters(exchanges: Sequence[Exchange], vectors: _Vectors, members: list[int],
              settings: MiningSettings) -> list[list[int]]:
    """Groups of ``members`` asking the same thing (question plus reply, when there is one)."""
    if len(members) < 2:
        return [members] if members else []
    joint = _joint(vectors, exchanges, members)
    labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                     distance_threshold=settings.cluster_distance).fit(joint)
    groups: dict[int, list[int]] = {}
    for member, label in zip(members, labels.labels_, strict=True):
        groups.setdefault(int(label), []).append(member)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _joint(vectors: _Vectors, exchanges: Sequence[Exchange], members: list[int]) -> np.ndarray:
    """Each member's question and reply embeddings summed and normalised (the question alone
    when no agent replied)."""
    replied = np.array([exchanges[i].reply is not None for i in members])[:, None]
    joint = vectors.questions[members] + np.where(replied, vectors.replies[members],
                                                  vectors.questions[members])
    return joint / np.linalg.norm(joint, axis=1, keepdims=True)


def _covered(group: list[int], exchanges: Sequence[Exchange], vectors: _Vectors,
             index: FaqIndex, settings: MiningSettings) -> bool:
    """Whether the FAQ answers ``group`` already: the bot gave an FAQ answer in every one of
    its conversations before an agent took over (the agents answered follow-ups), or the
    agents' replies agree with the answer of the entry most of its questions retrieve."""
    if all(vectors.bot_answered[i] for i in group):
        return True
    replied = [i for i in group if exchanges[i].reply is not None]
    firsts = Counter(hits[0].passage.id for i in group
                     if (hits := index.search_vector(vectors.questions[i], 1)))
    if not replied or not firsts:
        return False
    entry = [p.id for p in index.passages].index(firsts.most_common(1)[0][0])
    agreement = float(np.mean(vectors.replies[replied] @ vectors.answers[entry]))
    return agreement >= settings.covered_agreement


def _suggestions(exchanges: Sequence[Exchange], vectors: _Vectors, index: FaqIndex,
                 alternatives: dict[str, list[int]], groups: list[list[int]],
                 settings: MiningSettings, taken_intents: Sequence[str], people: Names,
                 guard: WordingGuard) -> Mined:
    all_questions = [e.question for e in exchanges]
    entries: list[NewEntry] = []
    intents: list[NewIntent] = []
    unanswered: list[tuple[Exchange, ...]] = []
    withheld: list[Withheld] = []
    taken = {p.id for p in index.passages}
    names = set(taken_intents)
    for group in groups:
        if len(group) < settings.min_count:
            continue
        members = tuple(exchanges[i] for i in group)
        replied = [i for i in group if exchanges[i].reply is not None]
        if not replied:
            unanswered.append(members)
            continue
        if _covered(group, exchanges, vectors, index, settings) \
                or _agreement(vectors.replies[replied]) < settings.consensus:
            continue
        answer = _consensus(replied, exchanges, vectors.replies, settings, people)
        wordings = _wordings(group, exchanges, vectors, settings, people,
                             enough=settings.max_alternatives + 1,
                             answer=vectors.replies[replied[answer.reply]])
        wordings, held = guard.split(wordings)
        if answer.text is None or not wordings:
            withheld.append(Withheld(members, answer.reason or "every wording of the question "
                                     "holds a person's name or masked personal data"))
            continue
        question, *others = wordings
        words = topic_words([exchanges[i].question for i in group], all_questions, question)
        entry_id = _unique("-".join(words) or "learned", taken)
        taken.add(entry_id)
        entries.append(NewEntry(entry_id, _sentence(question), answer.text,
                                tuple(others[:settings.max_alternatives]), members,
                                answer.removed, tuple(held)))
        if len(group) >= settings.intent_count:
            name = _unique("_".join(words) or "learned", names, joiner="_")
            names.add(name)
            intents.append(NewIntent(name, entry_id, tuple(guard.split(_wordings(
                group, exchanges, vectors, settings, people, enough=INTENT_EXAMPLES))[0]),
                members))
    found = tuple(NewAlternatives(entry, tuple(_distinct(
        [w for i in members if (w := anonymous(_wording(exchanges[i].question), people))],
        index, entry)), tuple(exchanges[i] for i in members))
        for entry, members in sorted(alternatives.items()))
    return Mined(tuple(entries), tuple(a for a in found if a.alternatives), tuple(intents),
                 tuple(unanswered), tuple(withheld))


def _agreement(replies: np.ndarray) -> float:
    """How alike the replies are: their mean pairwise cosine (1 for a single reply)."""
    n = len(replies)
    if n < 2:
        return 1.0
    return float(((replies @ replies.T).sum() - n) / (n * n - n))


def _wordings(group: list[int], exchanges: Sequence[Exchange], vectors: _Vectors,
              settings: MiningSettings, names: Names, *, enough: int,
              answer: np.ndarray | None = None) -> list[str]:
    """The group's distinct question wordings, the most central first (with an ``answer``,
    one whose agent reply does not contradict it), names in apposition left out and those
    still holding a name or masked data dropped; long ones (e-mails) only when fewer than
    ``enough`` short ones remain."""
    questions = vectors.questions[group]
    centrality = (questions @ questions.T).mean(axis=1)
    if answer is not None:
        agrees = [exchanges[i].reply is None or float(vectors.replies[i] @ answer) >= 0.5
                  for i in group]
        centrality = centrality + np.array(agrees, dtype=float)
    order = sorted(range(len(group)), key=lambda n: -centrality[n])
    kept: list[int] = []
    for n in order:
        if all(float(questions[n] @ questions[k]) < 0.95 for k in kept):
            kept.append(n)
    texts = [t for n in kept if (t := anonymous(_wording(exchanges[group[n]].question), names))]
    short = [t for t in texts if len(t.split()) <= settings.short_words]
    if len(short) >= min(enough, len(texts)):
        return short
    return short + [t for t in texts if t not in short]


def _distinct(wordings: list[str], index: FaqIndex, entry: str) -> list[str]:
    """``wordings`` the entry does not have yet (case and spacing aside), each once."""
    passage = index.get(entry)
    have = {_key(t) for t in ([passage.question or "", *passage.alternatives] if passage else [])}
    found: list[str] = []
    for text in wordings:
        if _key(text) not in have:
            have.add(_key(text))
            found.append(text)
    return found


def _consensus(replied: list[int], exchanges: Sequence[Exchange], replies: np.ndarray,
               settings: MiningSettings, names: Names) -> Answer:
    """The answer drawn from the group's agent replies (``Answer.reply``: a position in
    ``replied``): the reply most like the others that another conversation's reply agrees
    with, without what is about one customer (:func:`bot.learning.privacy.general_answer`)."""
    vectors = replies[replied]
    similarity = vectors @ vectors.T
    typical = [float(t) for t in similarity.mean(axis=1)]
    support = [int((row >= settings.consensus).sum()) - 1 for row in similarity]
    order = sorted(range(len(replied)), key=lambda n: -typical[n])
    customers = [" ".join(m.text for m in exchanges[i].conversation.messages
                          if m.speaker == "customer") for i in replied]
    return general_answer([str(exchanges[i].reply) for i in replied], customers, order,
                          typical, support, names)


def topic_words(questions: Sequence[str], everything: Sequence[str], title: str) -> list[str]:
    """The words that set ``questions`` apart from ``everything`` (for ids): the most
    distinctive, and one more that at least half as many of them use, in ``title``'s order."""
    counts = Counter(w for q in questions for w in set(_words(q)))
    frequency = Counter(w for q in everything for w in set(_words(q)))
    total = max(len(everything), 1)
    scored = sorted(((n / len(questions)) * math.log(total / frequency[w]), n, w)
                    for w, n in counts.items() if n >= 2 or len(questions) < 2)
    if not scored:
        return []
    best = scored[-1][1]
    chosen = [w for _, n, w in reversed(scored) if 2 * n >= best][:TOPIC_WORDS]
    order = _words(title)
    return sorted(chosen, key=lambda w: order.index(w) if w in order else len(order))


def _words(text: str) -> list[str]:
    words = re.findall(r"[a-z]{3,}", text.lower())
    return [_singular(w) for w in words if w not in NAME_STOP]


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 4 else word


def _unique(name: str, taken: set[str], *, joiner: str = "-") -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{joiner}{n}", n + 1
    return candidate


def _wording(question: str) -> str:
    """A customer's question as an FAQ wording: without a leading greeting."""
    return GREETING.sub("", question, count=1).strip() or question


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _key(text: str) -> str:
    return " ".join(text.lower().split())
