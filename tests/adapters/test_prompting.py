"""Prompt rendering, citation parsing and marker stripping (no model needed)."""

from __future__ import annotations

import random

import pytest

from adapters.engines.prompting import (
    NO_ANSWER,
    MarkerFilter,
    PromptTurn,
    answer_target,
    build_messages,
    is_decline,
    lcs_length,
    parse_citations,
    strip_markers,
    verify_citations,
)
from bot.definition.config import Persona
from bot.evaluation.generation import rouge_l, token_f1
from retrieval.documents import Passage

CARD = Passage("card-not-arrived", "Cards arrive within 5-7 working days.", "faq.yaml",
               title="My card has not arrived", question="My card has not arrived")
PIN = Passage("reset-pin", " ".join(["word"] * 30), "faq.yaml", title="Reset PIN")


def test_messages_hold_persona_passage_ids_history_and_question() -> None:
    history = [PromptTurn("user", f"old {n}") for n in range(6)]
    messages = build_messages(Persona(name="Ava", style="Be brief."), "where is my card?",
                              [CARD, PIN], history=history, history_turns=1, max_words=10)
    assert len(messages) == 4  # system, the last exchange (two messages), the question
    assert messages[0]["role"] == "system"
    assert "You are Ava" in messages[0]["content"] and "Be brief." in messages[0]["content"]
    assert [m["content"] for m in messages[1:3]] == ["old 4", "old 5"]
    last = messages[-1]["content"]
    assert "[card-not-arrived] My card has not arrived: Cards arrive" in last
    assert "[reset-pin] Reset PIN: word" in last and last.count("word") == 10
    assert last.endswith("Question: where is my card?")


def test_answer_target_ends_with_marker() -> None:
    assert answer_target(CARD) == "Cards arrive within 5-7 working days. [card-not-arrived]"


def test_citations_keep_only_ids_in_the_prompt() -> None:
    text = "Wait a week [card-not-arrived]. Or [made-up-id], also [reset-pin, card-not-arrived]"
    assert parse_citations(text, ["card-not-arrived", "reset-pin"]) == \
        ("card-not-arrived", "reset-pin")
    assert parse_citations(text, ["reset-pin"]) == ("reset-pin",)
    assert parse_citations("no markers here", ["reset-pin"]) == ()


@pytest.mark.parametrize(("raw", "clean"), [
    ("Cards take a week. [card-not-arrived]", "Cards take a week."),
    ("Cards take a week [card-not-arrived].", "Cards take a week."),
    ("See [a-b] and [c] for more", "See and for more"),
    ("[x]  Leading marker", "Leading marker"),
    ("Keep [two words] and [open", "Keep [two words] and [open"),
    ("Pay £5 [fees][cards]\n\nThen wait.  ", "Pay £5\n\nThen wait."),
    ("Nested [[id]] odd", "Nested [] odd"),
])
def test_strip_markers(raw: str, clean: str) -> None:
    assert strip_markers(raw) == clean


def test_marker_filter_is_independent_of_chunking() -> None:
    raw = "Standard cards [card-not-arrived] arrive in 5-7 days [x, y]. [not a marker] ok [end]"
    expected = strip_markers(raw)
    rng = random.Random(0)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(raw)), 8))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        cleaner = MarkerFilter()
        assert "".join(cleaner.feed(p) for p in pieces) + cleaner.finish() == expected


def test_decline_detection() -> None:
    assert is_decline(NO_ANSWER)
    assert is_decline("Sorry, I do not know that.")
    assert not is_decline("Cards arrive within 5-7 working days.")


def test_token_f1_and_rouge_l() -> None:
    assert token_f1("the card arrives", "The card arrives.") == 1.0
    assert token_f1("", "x") == 0.0
    assert token_f1("a b", "c d") == 0.0
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    # LCS 3 of 4 tokens each side: P = R = 0.75
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)


def test_citations_are_corrected_only_on_clear_evidence() -> None:
    copied = "Open the app, go to Card settings and choose Reset PIN."
    # the answer copies reset-pin but the marker says card-not-arrived: cite the source
    assert verify_citations(copied, ("card-not-arrived",), [CARD, PIN_SHORT]) == ("reset-pin",)
    assert verify_citations(copied, (), [CARD, PIN_SHORT]) == ("reset-pin",)
    assert verify_citations(copied, ("reset-pin",), [CARD, PIN_SHORT]) == ("reset-pin",)
    # a paraphrase is not clear evidence: the model's own marker stands
    loose = "You can change the PIN from the settings."
    assert verify_citations(loose, ("card-not-arrived",), [CARD, PIN_SHORT]) == \
        ("card-not-arrived",)
    assert verify_citations(NO_ANSWER, (), [CARD, PIN_SHORT]) == ()


PIN_SHORT = Passage("reset-pin", "Open the app, go to Card settings and choose Reset PIN.",
                    "faq.yaml", question="How do I reset my PIN?")
