"""The answer policy: features, the threshold rule, learning from a bot's own data, files."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adapters.answering.answer_policy import (
    AnswerPolicy,
    Example,
    choose,
    choose_threshold,
    upper_share,
)
from adapters.answering.evidence import Candidate, EvidenceBuilder, content_words
from adapters.answering.knowledge_questions import knowledge_entries
from adapters.answering.policy_data import (
    IntentUse,
    MaskedSearch,
    evidence_for,
    intent_links,
    policy_examples,
    train_policy,
)
from adapters.classifiers.intents import IntentPrediction
from adapters.errors import ModelError, NotTrainedError
from adapters.settings import AnswerSettings, ClassifierSettings
from retrieval.documents import Passage
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.index import FaqIndex, Hit

PASSAGES = [
    Passage("card-late", "Cards arrive within 5-7 working days; after 10 we send a new one.",
            "faq.yaml", question="My card has not arrived",
            alternatives=("where is my card", "card still not delivered",
                          "I never got the debit card")),
    Passage("pin-reset", "Open the app, go to Card settings and choose Reset PIN.", "faq.yaml",
            question="How do I reset my PIN?",
            alternatives=("forgot my pin", "change my pin number", "new PIN please")),
    Passage("transfer-time", "Domestic transfers arrive the same day; abroad 1-3 days.",
            "faq.yaml", question="How long does a bank transfer take?",
            alternatives=("when will my transfer arrive", "transfer duration",
                          "how many days for a payment abroad")),
    Passage("opening-hours", "Support is open Monday to Friday, 9:00 to 17:00.", "faq.yaml",
            question="When are you open?",
            alternatives=("opening hours", "what time can I call you", "are you open on sunday")),
]


def candidate(p: float, target: str = "a", kind: str = "faq") -> Candidate:
    return Candidate(kind, target, (0.0,) * 8, probability=p)


def test_content_words_drop_stop_words_and_plurals() -> None:
    assert content_words("How do I reset my PINs?") == {"reset", "pin"}
    assert content_words("the the and") == set()


def test_unknown_words_and_coverage_are_measured_against_the_bots_texts() -> None:
    evidence = EvidenceBuilder(Counter({"card": 2, "arrive": 1, "pin": 1}), {}, {})
    hit = Hit(PASSAGES[0], 0.7)
    known, = evidence.candidates("my card did not arrive", [hit], None, ())
    strange, = evidence.candidates("mortgage rate for my card", [hit], None, ())
    named = known.named(), strange.named()
    assert named[0]["unknown"] == 0.0 and named[1]["unknown"] == pytest.approx(2 / 3, abs=1e-3)
    assert named[0]["coverage"] > named[1]["coverage"]
    # a text of the bot's own does not count its own words as known
    own, = evidence.candidates("arrive", [hit], None, (), own=True)
    assert own.named()["unknown"] == 1.0


def test_intent_candidates_only_for_answering_intents() -> None:
    evidence = EvidenceBuilder(Counter(), {"thanks": Counter({"thank": 3})}, {})
    verdict = IntentPrediction("thanks", 0.9, [("thanks", 0.9), ("order", 0.05)])
    kinds = [c.kind for c in evidence.candidates("thanks a lot", [], verdict, {"thanks"})]
    assert kinds == ["intent"]
    assert evidence.candidates("thanks a lot", [], verdict, set()) == []


def test_choose_answers_clarifies_or_abstains() -> None:
    assert choose([candidate(0.8)], 0.7) == "answer"
    assert choose([candidate(0.45, "a"), candidate(0.4, "b")], 0.7) == "clarify"
    assert choose([candidate(0.45, "a"), candidate(0.1, "b")], 0.7) == "abstain"
    assert choose([candidate(0.45, "a"), candidate(0.4, "a")], 0.7) == "abstain"
    assert choose([], 0.7) == "abstain"
    # an intent and the passage its response states are one answer: nothing to ask
    linked = [candidate(0.45, "rates", kind="intent"), candidate(0.4, "fx")]
    assert choose(linked, 0.7) == "clarify"
    assert choose(linked, 0.7, {"rates": "fx"}) == "abstain"
    assert choose(linked, 0.7, {"rates": "other"}) == "clarify"


def test_threshold_keeps_wrong_answers_within_the_share() -> None:
    outcomes = [(0.9, True, 1.0)] * 8 + [(0.6, False, 1.0)] + [(0.5, True, 1.0)] + \
        [(0.4, False, 1.0)] * 10
    # 20 questions: answering from 0.6 makes 1 wrong (5 %), from 0.5 still 1, from 0.4: 11
    assert choose_threshold(outcomes, 0.05, z=0) == 0.5
    assert choose_threshold(outcomes, 0.0, z=0) == 0.9
    assert choose_threshold(outcomes, 0.6, z=0) == 0.4


def test_threshold_leaves_room_for_chance_in_few_questions() -> None:
    # 1 wrong in 25 is 4 %, but the next 25 could well hold 4 wrong: answer only above it
    outcomes = [(0.9, True, 1.0)] * 19 + [(0.6, False, 1.0)] + [(0.4, False, 1.0)] * 5
    assert choose_threshold(outcomes, 0.05, z=0) == 0.6
    assert choose_threshold(outcomes, 0.05) == 0.9
    assert choose_threshold(outcomes, 0.12) == 0.6  # a looser target allows it
    # the bound lies above the share seen and closes in on it with more questions
    assert upper_share(0.04, 25, 1.645) > 0.1 > upper_share(0.04, 1000, 1.645) > 0.04
    assert upper_share(0.04, 25, 0) == 0.04 and upper_share(0.0, 25, 1.645) == 0.0
    # fewer effective questions when a few weigh much: the same shares, less sure
    heavy = [(0.9, True, 5.0)] * 19 + [(0.6, False, 5.0)] + [(0.4, False, 5.0)] * 5
    assert choose_threshold(heavy, 0.12) == 0.6
    lopsided = [(0.9, True, 1.0)] * 95 + [(0.6, False, 6.0)] + [(0.4, False, 3.0)] * 25
    assert choose_threshold(lopsided, 0.05, z=0) == 0.6
    assert choose_threshold(lopsided, 0.05) == 0.9


def index_of(embedder: SentenceEmbedder) -> FaqIndex:
    return FaqIndex.build(list(PASSAGES), embedder)


def test_masked_search_leaves_rows_out(embedder: SentenceEmbedder) -> None:
    search = MaskedSearch(index_of(embedder))
    row = search.texts.index("forgot my pin")
    assert search.search(search.vectors[row], 1)[0].score == pytest.approx(1.0, abs=1e-4)
    without = search.owners == search.owners[row]
    assert all(h.passage.id != "pin-reset" for h in
               search.search(search.vectors[row], 3, without=without))


def test_links_explicit_or_learned_and_unknown_ids_refused(embedder: SentenceEmbedder) -> None:
    index = index_of(embedder)
    uses = [IntentUse("pin", ("I forgot my PIN", "reset my card PIN", "new pin"), response=True),
            IntentUse("hours", ("when do you open",), response=True, faq="opening-hours"),
            IntentUse("form", ("check my order",), acts=True)]
    links = intent_links(uses, index, embedder, 3)
    assert links == {"pin": "pin-reset", "hours": "opening-hours"}
    with pytest.raises(ModelError, match="'nope' is no FAQ entry"):
        intent_links([IntentUse("x", ("a",), faq="nope")], index, embedder, 3)


def test_policy_learns_from_faq_answers_known_and_abstains_on_strangers(
        embedder: SentenceEmbedder, tmp_path: Path) -> None:
    index = index_of(embedder)
    policy, learned = train_policy(tmp_path / "policy", index, embedder, [], None,
                                   ClassifierSettings(), AnswerSettings(), k=3)
    assert learned and 0.05 <= policy.threshold <= 0.99
    assert policy.manifest["examples"] > 0

    def decide(text: str) -> str:
        vector = embedder.embed([text])[0]
        return policy.decide(text, index.search_vector(vector, 3), None).action

    assert decide("How do I reset my PIN?") == "answer"
    assert decide("can I get a mortgage and what is the interest rate on it?") != "answer"
    decision = policy.decide("How do I reset my PIN?",
                             index.search_vector(embedder.embed(["How do I reset my PIN?"])[0],
                                                 3), None)
    evidence = decision.evidence()
    assert evidence["action"] == "answer" and evidence["candidates"][0]["target"] == "pin-reset"
    assert set(evidence["candidates"][0]["features"]) >= {"score", "lead", "unknown"}
    # unchanged inputs: reused; the saved policy decides the same
    again, relearned = train_policy(tmp_path / "policy", index, embedder, [], None,
                                    ClassifierSettings(), AnswerSettings(), k=3)
    assert not relearned and again.threshold == pytest.approx(policy.threshold)


def test_a_stricter_target_answers_less(embedder: SentenceEmbedder, tmp_path: Path) -> None:
    index = index_of(embedder)
    loose, _ = train_policy(tmp_path / "a", index, embedder, [], None, ClassifierSettings(),
                            AnswerSettings(max_wrong_rate=0.5), k=3)
    strict, _ = train_policy(tmp_path / "b", index, embedder, [], None, ClassifierSettings(),
                             AnswerSettings(max_wrong_rate=0.0), k=3)
    assert strict.threshold >= loose.threshold


def test_missing_stale_or_damaged_policy_files_are_named(
        embedder: SentenceEmbedder, tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    with pytest.raises(NotTrainedError, match="run `bot train`"):
        AnswerPolicy.load(folder)
    train_policy(folder, index_of(embedder), embedder, [], None, ClassifierSettings(),
                 AnswerSettings(), k=3)
    with pytest.raises(NotTrainedError, match="out of date"):
        AnswerPolicy.load(folder, {"policy_sha256": "something else"})
    body = json.loads((folder / "policy.json").read_text())
    body["scorers"]["faq"]["coef"] = [1.0]
    (folder / "policy.json").write_text(json.dumps(body))
    with pytest.raises(ModelError, match=r"policy\.json: answer policy is damaged"):
        AnswerPolicy.load(folder)
    (folder / "policy.json").write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        AnswerPolicy.load(folder)


def test_too_little_data_leaves_the_threshold_rule(embedder: SentenceEmbedder,
                                                   tmp_path: Path) -> None:
    bare = FaqIndex.build([Passage("a", "text", "x.yaml", question="q?",
                                   alternatives=("other q",))], embedder)
    policy, _ = train_policy(tmp_path / "p", bare, embedder, [], None, ClassifierSettings(),
                             AnswerSettings(), k=3)
    assert not policy.learned
    assert not AnswerPolicy.load(tmp_path / "p").learned
    with pytest.raises(ModelError, match="no examples"):
        AnswerPolicy.fit([], EvidenceBuilder(Counter(), {}, {}), max_wrong_rate=0.05)
    assert Example((), frozenset()).weight == 1.0



PLAIN = [  # a plain FAQ: questions and answers, no alternatives (as most teams write one)
    ("pin", "How do I reset my PIN?", "Open the app, go to Card settings and choose Reset PIN."),
    ("card-late", "My card has not arrived", "Cards arrive within 5-7 working days."),
    ("transfer-time", "How long does a bank transfer take?",
     "Domestic transfers arrive the same day; transfers abroad take 1-3 working days."),
    ("hours", "When is customer support open?", "Monday to Friday, 9:00 to 17:00."),
    ("lost-card", "I lost my card, what should I do?",
     "Freeze the card in the app at once and order a replacement."),
    ("statement", "Where can I download my account statement?",
     "Statements are under Accounts > Documents in the app, as PDF."),
    ("address", "How do I change my address?",
     "Go to Profile > Personal details and edit your address; we confirm by e-mail."),
    ("fees", "Does the account have a monthly fee?",
     "The standard account is free; the premium account costs 7 euros a month."),
    ("overdraft", "Can I get an overdraft?",
     "Customers over 18 with a regular income can request an overdraft in the app."),
    ("close", "How do I close my account?",
     "Send us a message in the app; we close the account within five working days."),
]


def test_a_plain_faq_gets_a_decision_learned_from_its_own_questions(
        embedder: SentenceEmbedder, tmp_path: Path) -> None:
    index = FaqIndex.build([Passage(id_, answer, "faq.jsonl", title=question,
                                    question=question) for id_, question, answer in PLAIN],
                           embedder)
    policy, learned = train_policy(tmp_path / "policy", index, embedder, [], None,
                                   ClassifierSettings(), AnswerSettings(), k=3)
    assert learned and policy.learned
    assert policy.manifest["questions"] == {"entry questions": 10,
                                            "reordered entry questions": 20,
                                            "uncovered": 30, "off-topic": 126}
    assert 0.0 <= policy.manifest["held_out"]["wrong"] <= 0.1

    def decide(text: str) -> tuple[str, str | None]:
        decision = policy.decide(text, index.search_vector(embedder.embed([text])[0], 3), None)
        return decision.action, decision.best.target if decision.best else None

    assert decide("I forgot my PIN, how can I set a new one?") == ("answer", "pin")
    assert decide("What's the weather like in Paris tomorrow?")[0] == "abstain"
    assert decide("can I get a mortgage and what is the interest rate on it?")[0] != "answer"


def test_a_plain_faq_too_small_to_learn_from_says_why(embedder: SentenceEmbedder,
                                                      tmp_path: Path) -> None:
    index = FaqIndex.build([Passage(id_, answer, "faq.jsonl", title=question,
                                    question=question) for id_, question, answer in PLAIN[:4]],
                           embedder)
    policy, _ = train_policy(tmp_path / "policy", index, embedder, [], None,
                             ClassifierSettings(), AnswerSettings(), k=3)
    assert not policy.learned
    assert "only 4 questions with a right answer" in policy.manifest["not_learned"]
    assert policy.manifest["questions"]["entry questions"] == 4


class Tuned:
    """Stands for an encoder tuned on ``kept``: embeds as ``embedder`` and logs what."""

    def __init__(self, embedder: SentenceEmbedder, kept: Sequence[Passage],
                 log: list[tuple[set[str], list[str]]]) -> None:
        self.embedder, self.kept, self.log = embedder, {p.id for p in kept}, log
        self.name, self.dimensions = embedder.name, embedder.dimensions

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.log.append((self.kept, list(texts)))
        return self.embedder.embed(texts)


def test_no_entry_question_is_asked_of_an_encoder_tuned_on_it(
        embedder: SentenceEmbedder) -> None:
    plain = [Passage(id_, answer, "faq.jsonl", title=question, question=question)
             for id_, question, answer in PLAIN[4:7]]
    passages = [*PASSAGES, *plain, *(
        Passage(f"extra-{n}", f"Answer {n}.", "faq.yaml", question=f"Question number {n}?",
                alternatives=(f"question {n} again", f"another way to ask {n}"))
        for n in range(6))]
    index = FaqIndex.build(passages, embedder)
    rows = MaskedSearch(index).texts
    log: list[tuple[set[str], list[str]]] = []

    def refit(kept: Sequence[Passage]) -> Embedder:
        return Tuned(embedder, kept, log)

    found = policy_examples(index, embedder, [], None, ClassifierSettings(),
                            evidence_for([], index, {}), k=3, refit=refit)
    assert found.counts["entry questions"] == len(passages)
    assert found.counts["reordered entry questions"] == 2 * len(passages)
    words = {p.id: sorted((p.question or "").split()) for p in passages}
    asked_by_folds = set()
    for kept, texts in log:
        if texts == rows:  # a fold's index, not questions
            continue
        for text in texts:  # an entry's question, verbatim or reordered
            owner = next(id_ for id_, w in words.items() if w == sorted(text.split()))
            assert owner not in kept  # that fold's encoder was tuned without the entry
            asked_by_folds.add(owner)
    # entries with alternatives were tuned on: asked in folds; plain ones never were
    assert asked_by_folds == {p.id for p in passages if p.alternatives}
    # a bot with intents asks only the entries without alternatives their question
    assert [passages[n].id for n in knowledge_entries(passages, intents=True)] == \
        [p.id for p in plain]
    assert len(knowledge_entries(passages, intents=False)) == len(passages)
