from __future__ import annotations

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
    assert passages[2].title == "Our promise"

    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"question": "Q?", "answer": "A."}\n\n{"question": "R?", "answer": "B."}\n')
    assert [p.text for p in load(jsonl)] == ["A.", "B."]


def test_chunking_overlaps_and_covers_all_words() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    chunks = chunk_text(text, CHUNKS)
    assert len(chunks) == 3
    assert all(len(c.split()) <= 20 for c in chunks)
    assert chunks[1].split()[:5] == chunks[0].split()[-5:]
    assert chunks[-1].split()[-1] == "w49"


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.yaml", "- question: Q?\n  answer: ''\n", "a.yaml:1: [0].answer: must be a non-empty"),
    ("b.yaml", "- question: Q?\n  answer: A\n  colour: red\n",
     "b.yaml:1: [0]: unknown key 'colour'"),
    ("c.yaml", "just text", "must be a list of entries"),
    ("d.csv", "q,a\nx,y\n", "d.csv:1: CSV needs a header"),
    ("e.jsonl", '{"question": "Q?", "answer": "A"}\n{bad\n', "e.jsonl:2: invalid JSON"),
    ("f.txt", "hello", "unsupported FAQ file type '.txt'"),
    ("g.md", "", "contains no FAQ entries"),
])
def test_bad_sources_name_file_and_entry(tmp_path: Path, name: str, content: str,
                                         expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert expected in str(info.value)
