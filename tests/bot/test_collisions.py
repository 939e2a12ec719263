"""A suggested wording that would take a question another entry answers is held back
(`bot.learning.collisions`), with the packaged embedder and a real index."""

from __future__ import annotations

import yaml

from bot.learning.collisions import WordingGuard
from bot.learning.suggestions import Suggestion, render
from retrieval.embedder import SentenceEmbedder
from retrieval.index import FaqIndex
from retrieval.passages import Passage

CASH = Passage("cash-deposit", "Paying in cash at a Post Office is free for up to £1,000 a day.",
               "faq.yaml", question="Does it cost anything to pay in cash?",
               alternatives=("fee for depositing cash", "is paying in cash free"))
PIN = Passage("reset-pin", "Open the app, go to Card settings and choose Reset PIN.", "faq.yaml",
              question="How do I reset my PIN?", alternatives=("forgot my pin", "new pin please"))
CHEQUE_WORDINGS = [
    "How do I pay in a cheque? My nan gave me one for my birthday",
    "Can I pay a cheque in at the post office like cash?",
    "can i take a photo of a cheque to pay it in?",
    "where do I send a cheque to pay it in",
]
ASKED = "can I pay in cash at a post office?"  # a conversation test expects cash-deposit


def guard(cited: list[tuple[str, str]], threshold: float = 0.5) -> WordingGuard:
    embedder = SentenceEmbedder()
    return WordingGuard.build(FaqIndex.build([CASH, PIN], embedder), embedder, cited,
                              threshold=threshold)


def test_a_wording_nearer_to_another_entrys_question_is_held_back_and_says_why() -> None:
    kept, held = guard([(ASKED, "cash-deposit")]).split(CHEQUE_WORDINGS)
    assert kept == [w for w in CHEQUE_WORDINGS if "like cash" not in w]
    assert len(held) == 1
    assert held[0].startswith('"Can I pay a cheque in at the post office like cash?": nearer to')
    assert "cash-deposit" in held[0]


def test_wordings_of_their_own_topic_are_all_kept() -> None:
    wordings = [w for w in CHEQUE_WORDINGS if "like cash" not in w]
    # a cited question of an entry the index lacks is ignored, not an error
    assert guard([(ASKED, "cash-deposit"), ("hello", "no-such-entry")]).split(wordings) == \
        (wordings, [])
    assert guard([]).split(wordings[:1]) == (wordings[:1], [])  # one wording: nothing to compare


def test_a_question_its_entry_would_not_answer_anyway_is_not_guarded() -> None:
    # from a threshold above what cash-deposit scores for the question, it is no anchor
    assert guard([(ASKED, "cash-deposit")], threshold=0.99).split(CHEQUE_WORDINGS) == \
        (CHEQUE_WORDINGS, [])


def test_the_suggestion_file_lists_what_was_held_back_as_comments() -> None:
    _, held = guard([(ASKED, "cash-deposit")]).split(CHEQUE_WORDINGS)
    entry = {"id": "cheque", "question": CHEQUE_WORDINGS[0], "answer": "Post it to us.",
             "alternatives": CHEQUE_WORDINGS[2:]}
    text = render(Suggestion("faq-cheque", "faq", entry, 4, held_back=tuple(held)), "my_bot")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert any("would take questions another entry answers" in line for line in comments)
    assert any("like cash" in line and "cash-deposit" in line for line in comments)
    assert "like cash" not in yaml.safe_load(text)["entry"]["alternatives"]
