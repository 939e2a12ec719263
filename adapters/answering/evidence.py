"""What speaks for each candidate answer to a message: the features the answer policy weighs.

A candidate is an FAQ passage among the retrieved hits, or an intent with a canned response.
Its features combine retrieval evidence (cosine score, lead over the other passages), the
intent classifier's (confidence, lead, out-of-scope probability), whether the two agree (an
intent linked to the passage), and word evidence: how many of the message's content words
the candidate's own texts contain, and how many the bot knows nothing of at all ("mortgage"
in a bank's card FAQ). See ``adapters/answering/answer_policy.py`` for how they are weighed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adapters.classifiers.intents import IntentPrediction
from retrieval.documents import Passage
from retrieval.index import Hit

FAQ_FEATURES = ("score", "below_best", "lead", "coverage", "unknown", "intent_agrees",
                "out_of_scope", "first")
INTENT_FEATURES = ("confidence", "lead", "coverage", "unknown", "faq_agrees", "out_of_scope")

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script: "tarjeta", "größe", "卡"
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "could", "did", "do", "does", "doing", "done", "don", "down", "during", "each",
    "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he", "her",
    "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "out", "over", "own", "please", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "you", "your", "yours", "yourself", "hi", "hello", "hey", "thanks",
    "thank", "ok", "okay", "want", "need", "like", "know", "tell", "let", "one", "im",
    "ive", "id", "dont", "cant", "wont", "doesnt", "didnt", "isnt",
})


def content_words(text: str) -> set[str]:
    """The message's content words, case-folded, stop words dropped, plural -s stripped; in
    scripts written without spaces (Chinese, Japanese, Korean), its characters two by two
    ("银行卡" -> "银行", "行卡"), as a word of one character would say too little."""
    words = set()
    spaced = _UNSPACED.sub(lambda m: " " + " ".join(_pairs(m.group())) + " ", text.casefold())
    for word in _WORD.findall(spaced):
        if word in STOPWORDS or (len(word) < 2 and not _UNSPACED.match(word)):
            continue
        words.add(word[:-1] if len(word) > 3 and word.endswith("s")
                  and not word.endswith("ss") else word)
    return words


def _pairs(run: str) -> list[str]:
    """A run of characters of an unspaced script, two by two (one alone stays itself)."""
    return [run[i:i + 2] for i in range(len(run) - 1)] or [run]


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """In how many of ``texts`` each content word occurs: what the bot knows about."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(content_words(text))
    return counts


def passage_texts(passage: Passage) -> list[str]:
    """A passage's texts: title, question, alternatives, answer and its translations."""
    return [passage.title, passage.question or "", *passage.alternatives, passage.text,
            *(answer for _, answer in passage.translations)]


@dataclass(frozen=True)
class Candidate:
    """One possible answer: an FAQ passage (``kind`` "faq", ``target`` its id) or an intent's
    response ("intent", the intent's name), with its features and, once weighed, the
    probability that it is the right answer."""

    kind: str
    target: str
    features: tuple[float, ...]
    probability: float = 0.0

    def named(self) -> dict[str, float]:
        names = FAQ_FEATURES if self.kind == "faq" else INTENT_FEATURES
        return {n: round(v, 4) for n, v in zip(names, self.features, strict=True)}


@dataclass
class EvidenceBuilder:
    """Computes candidates' features for one bot: its vocabulary (word -> number of texts),
    each intent's words and which passage each intent stands for (``links``: intent ->
    passage id)."""

    known: Counter[str]
    intent_words: Mapping[str, Counter[str]]
    links: Mapping[str, str]

    def __post_init__(self) -> None:
        self._passage_words: dict[str, Counter[str]] = {}

    def _words_of(self, passage: Passage) -> Counter[str]:
        found = self._passage_words.get(passage.id)
        if found is None:
            found = self._passage_words[passage.id] = word_counts(passage_texts(passage))
        return found

    def candidates(self, text: str, hits: Sequence[Hit], intent: IntentPrediction | None,
                   answerable: Iterable[str], *, own: bool = False) -> list[Candidate]:
        """The FAQ hits, and the intents in ``answerable`` (those with a canned response)
        that the classifier ranks, as candidates with their features. ``own``: ``text`` is
        one of the bot's own texts (training), so its words do not count as known."""
        words = content_words(text)
        less = 1 if own else 0
        unknown = _share({w for w in words if self.known[w] <= less}, words)
        ranking = intent.ranking if intent is not None else []
        out_of_scope = intent.out_of_scope_probability if intent is not None else 0.0
        found: list[Candidate] = []
        best = hits[0].score if hits else 0.0
        for rank, hit in enumerate(hits):
            others = [h.score for h in hits if h.passage.id != hit.passage.id]
            agrees = sum(p for name, p in ranking if self.links.get(name) == hit.passage.id)
            found.append(Candidate("faq", hit.passage.id, (
                hit.score, best - hit.score, hit.score - max(others, default=0.0),
                _share(_known(words, self._words_of(hit.passage), less), words), unknown, agrees,
                out_of_scope, 1.0 if rank == 0 else 0.0)))
        scores = {h.passage.id: h.score for h in hits}
        wanted = set(answerable)
        for name, probability in ranking[:2]:
            if name not in wanted:
                continue
            other = max((p for n, p in ranking if n != name), default=0.0)
            examples = self.intent_words.get(name, Counter())
            found.append(Candidate("intent", name, (
                probability, probability - other, _share(_known(words, examples, less), words),
                unknown,
                scores.get(self.links.get(name, ""), 0.0), out_of_scope)))
        return found


def _known(words: set[str], counts: Counter[str], less: int) -> set[str]:
    """The ``words`` that ``counts`` holds more than ``less`` times."""
    return {w for w in words if counts[w] > less}


def _share(part: set[str], whole: set[str]) -> float:
    return len(part) / len(whole) if whole else 0.0
