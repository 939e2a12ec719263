from __future__ import annotations

from retrieval.sentences import join_sentences, select_sentences, split_sentences, tail

TEXT = """Deposits are protected, e.g. by the FSCS, up to £85,000 per person. Rates are 2.5% a
year, i.e. paid monthly! Write to help@acmebank.example. Is it safe? Yes, we open 9 a.m. to 5 p.m.

You need:
- A passport.
- A bill from the last 3 months
1. Open the app. Tap Cards."""


def test_sentences_end_at_sentence_marks_paragraphs_and_list_items_only() -> None:
    assert [s.text for s in split_sentences(TEXT)] == [
        "Deposits are protected, e.g. by the FSCS, up to £85,000 per person.",
        "Rates are 2.5% a year, i.e. paid monthly!",
        "Write to help@acmebank.example.",
        "Is it safe?",
        "Yes, we open 9 a.m. to 5 p.m.",
        "You need:",
        "- A passport.",
        "- A bill from the last 3 months",
        "1. Open the app.",
        "Tap Cards.",
    ]


def test_joined_sentences_keep_paragraphs_and_list_lines_and_split_the_same() -> None:
    sentences = split_sentences(TEXT)
    joined = join_sentences(sentences)
    assert "5 p.m.\n\nYou need:\n- A passport.\n- A bill" in joined
    assert "year, i.e. paid monthly! Write to" in joined
    assert split_sentences(joined) == sentences
    assert join_sentences(sentences[5:7]) == "You need:\n- A passport."


def test_tail_takes_whole_sentences_within_the_words() -> None:
    sentences = split_sentences("One two three. Four five. Six.")
    assert [s.text for s in tail(sentences, 3)] == ["Four five.", "Six."]
    assert [s.text for s in tail(sentences, 2)] == ["Six."]
    assert tail(sentences, 0) == []


def test_selection_keeps_the_best_and_close_sentences_in_order_within_the_words() -> None:
    sentences = split_sentences("Alpha one. Beta two words. Gamma three. Delta four.")
    chosen = select_sentences(sentences, [0.50, 0.20, 0.80, 0.75], words=60, margin=0.1)
    assert [s.text for s in chosen] == ["Gamma three.", "Delta four."]
    assert [s.text for s in select_sentences(sentences, [0.5, 0.2, 0.8, 0.75], words=3,
                                             margin=0.1)] == ["Gamma three."]
    assert [s.text for s in select_sentences(sentences, [0.79, 0.2, 0.8, 0.75], words=60,
                                             margin=0.1)] == ["Alpha one.", "Gamma three.",
                                                              "Delta four."]
    assert select_sentences([], []) == []
