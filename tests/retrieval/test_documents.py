from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from retrieval.documents import ChunkSettings, chunk_text, load_source
from retrieval.errors import SourceError as ConfigError

CHUNKS = ChunkSettings(words=20, overlap=5)


def load(path: Path) -> list:  # type: ignore[type-arg]
    return load_source(path, display=path.name, chunking=CHUNKS)


def test_yaml_entries_keep_ids_alternatives_and_free_text(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text("- id: a\n  question: Q one?\n  answer: A one.\n  alternatives: [q1]\n"
                    "- title: About us\n  text: We are a bank.\n")
    passages = load(path)
    assert [p.id for p in passages] == ["a", "about-us"]
    assert passages[0].alternatives == ("q1",) and passages[0].question == "Q one?"
    assert passages[1].question is None and passages[1].text == "We are a bank."


def test_csv_markdown_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "fees.csv"
    csv_path.write_text('id,question,answer,alternatives\nfee,"What fees, if any?",None.,a|b\n')
    (only,) = load(csv_path)
    assert (only.id, only.question, only.alternatives) == ("fee", "What fees, if any?", ("a", "b"))

    md = tmp_path / "sec.md"
    md.write_text("# Security\n\nIntro text about safety.\n\n## How do I report fraud?\n\n"
                  "Call us at once.\n\n## Our promise\n\nWe never ask for your PIN.\n")
    passages = load(md)
    assert [p.question for p in passages] == [None, "How do I report fraud?", None]
    assert passages[1].text == "Call us at once." and passages[1].id == "how-do-i-report-fraud"
    assert passages[2].title == "Security > Our promise" and passages[2].id == "sec-our-promise"

    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"question": "Q?", "answer": "A."}\n\n{"question": "R?", "answer": "B."}\n')
    assert [p.text for p in load(jsonl)] == ["A.", "B."]


SENTENCES = [f"Sentence {i} has {'some ' * (i % 4)}words, e.g. 2.5 of them." for i in range(12)]


def test_chunks_are_whole_sentences_that_cover_the_text_and_overlap_by_sentences() -> None:
    settings = ChunkSettings(words=30, overlap=12)  # sentences of 9-12 words
    chunks = chunk_text(" ".join(SENTENCES[:6]) + "\n\n" + " ".join(SENTENCES[6:]), settings)
    assert len(chunks) >= 5
    inside = [[s for s in SENTENCES if s in chunk] for chunk in chunks]
    for chunk, sentences in zip(chunks, inside, strict=True):
        assert chunk.endswith(".") and len(chunk.split()) <= settings.words
        assert " ".join(chunk.split()) == " ".join(sentences)  # whole sentences, nothing cut
    assert [s for s in SENTENCES if not any(s in c for c in chunks)] == []
    for before, after in pairwise(inside):
        shared = [s for s in after if s in before]
        assert shared and shared == before[-len(shared):] == after[:len(shared)]
        assert sum(len(s.split()) for s in shared) <= settings.overlap


def test_an_over_long_sentence_is_a_chunk_of_its_own() -> None:
    long = " ".join(f"W{i}" for i in range(30)) + "."
    assert chunk_text(f"Short one. {long} Short two.", CHUNKS) == ["Short one.", long,
                                                                   "Short two."]


NOTES_MD = """# Guide
<!-- Owner: ops team -->

## About us

We are a bank. <!-- staff: code RED-7 --> We open at 9.

<!-- Not yet:
## Do you do crypto?
Yes, soon. SECRET-LAUNCH
-->
Internal note: refunds over £500 need a team lead,
call extension 4411.

> **Internal:** do not mention the merger.

We close at 5.

## How do I pay?

Use the app.

INTERNAL NOTES: fee waiver code WAIVE-9.

## Our team

<!-- only notes here -->
"""


def test_internal_notes_are_never_in_a_passage(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(NOTES_MD)
    passages = load(path)
    assert [(p.id, p.text) for p in passages] == [
        ("guide-about-us", "We are a bank. We open at 9.\n\nWe close at 5."),
        ("how-do-i-pay", "Use the app."),
    ]
    for hidden in ("Owner", "RED-7", "crypto", "SECRET", "4411", "merger", "WAIVE"):
        assert all(hidden not in p.text + p.title for p in passages)


def test_the_notes_rule_holds_in_yaml_jsonl_and_csv_and_keeps_answers_as_written(
        tmp_path: Path) -> None:
    yaml_path = tmp_path / "faq.yaml"
    yaml_path.write_text("- question: Fees?\n  answer: |\n    None at all.\n    Really.\n\n"
                         "    Internal note: we charge VIPs.\n"
                         "- title: About\n  text: |\n    We are a bank.\n\n"
                         "    internal: merger soon\n")
    fees, about = load(yaml_path)
    assert (fees.text, about.text) == ("None at all.\nReally.", "We are a bank.")
    jsonl = tmp_path / "faq.jsonl"
    jsonl.write_text('{"question": "Q?", "answer": "A. <!-- staff only -->"}\n')
    assert [p.text for p in load(jsonl)] == ["A."]
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text('question,answer\nQ?,"Yes.\n\nInternal note: check CRM."\n')
    assert [p.text for p in load(csv_path)] == ["Yes."]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.yaml", "- question: Q?\n  answer: A.\n- question: R?\n  answer: '<!-- later -->'\n",
     "a.yaml:3: [1].answer: is all internal notes"),
    ("b.jsonl", '{"title": "T", "text": "Internal note: tbd"}\n',
     "b.jsonl:1: line 1.text: is all internal notes"),
    ("c.csv", 'question,answer\nQ?,"Internal: ask Bob"\n', "c.csv:2: answer: is all internal"),
    ("d.md", "# T\n\n## Is it free?\n\n<!-- ask finance -->\n",
     "d.md:3: Is it free?: is all internal notes"),
    ("e.md", "## About\n\nText. <!-- never closed\n", "e.md:1: About: an HTML comment"),
])
def test_an_answer_that_is_all_internal_notes_names_file_and_entry(
        tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert expected in str(info.value)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.yaml", "- question: Q?\n  answer: ''\n", "a.yaml:1: [0].answer: must be a non-empty"),
    ("b.yaml", "- question: Q?\n  answer: A\n  colour: red\n",
     "b.yaml:1: [0]: unknown key 'colour'"),
    ("c.yaml", "just text", "must be a list of entries"),
    ("d.csv", "q,a\nx,y\n", "d.csv:1: CSV needs a header"),
    ("e.jsonl", '{"question": "Q?", "answer": "A"}\n{bad\n', "e.jsonl:2: invalid JSON"),
    ("f.rtf", "hello", "unsupported FAQ file type '.rtf'"),
    ("g.md", "", "contains no FAQ entries"),
])
def test_bad_sources_name_file_and_entry(tmp_path: Path, name: str, content: str,
                                         expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert expected in str(info.value)
