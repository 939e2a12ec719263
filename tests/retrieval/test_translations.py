"""FAQ entries written in several languages: the first language's texts are the entry's,
the others' questions more wordings of it and their answers its translations; mistakes are
named with file, item and line. The index keeps the translations."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import ChunkSettings, load_source
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import SourceError
from retrieval.index import FaqIndex

ENTRY = """\
- id: reset-pin
  question:
    en: How do I reset my PIN?
    es: ¿Cómo cambio mi PIN?
    zh: 我怎么重置密码？
  answer:
    en: Open the app, go to Card settings and choose Reset PIN.
    es: Abre la app, ve a Ajustes de la tarjeta y elige Restablecer PIN.
    zh: 打开应用，进入银行卡设置，选择重置密码。
  alternatives: [forgot my PIN]
- id: plain
  question: Where is my card?
  answer: Cards arrive within 5-7 working days.
"""


def load(path: Path) -> list:  # type: ignore[type-arg]
    return load_source(path, display=path.name, chunking=ChunkSettings(words=60, overlap=10))


def test_the_first_language_is_the_entrys_and_the_others_translate_it(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(ENTRY, encoding="utf-8")
    pin, plain = load(path)
    assert pin.question == "How do I reset my PIN?"
    assert pin.text == "Open the app, go to Card settings and choose Reset PIN."
    assert pin.alternatives == ("forgot my PIN", "¿Cómo cambio mi PIN?", "我怎么重置密码？")
    assert pin.translated("es") == ("Abre la app, ve a Ajustes de la tarjeta y elige "
                                    "Restablecer PIN.")
    assert pin.translated("zh") == "打开应用，进入银行卡设置，选择重置密码。"
    assert pin.translated("de") is None and plain.translations == ()


def test_the_index_keeps_the_translations(tmp_path: Path,
                                          embedder: SentenceEmbedder) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(ENTRY, encoding="utf-8")
    passages = load(path)
    FaqIndex.build(passages, embedder).save(tmp_path / "index")
    loaded = FaqIndex.load(tmp_path / "index")
    assert loaded.passages == passages
    assert loaded.passages[0].translated("zh") == "打开应用，进入银行卡设置，选择重置密码。"


def test_each_translated_answer_is_a_passage_row_of_its_entry(tmp_path: Path,
                                                              embedder: SentenceEmbedder) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(ENTRY, encoding="utf-8")
    pin, plain = load(path)
    # questions first (embedded as queries), then the passage texts: question + answer and
    # each translated answer (embedded as passages)
    assert pin.question_texts() == ["How do I reset my PIN?", *pin.alternatives]
    assert pin.passage_texts() == [f"{pin.question} {pin.text}", pin.translated("es"),
                                   pin.translated("zh")]
    assert pin.search_texts() == [*pin.question_texts(), *pin.passage_texts()]
    assert plain.passage_texts() == [f"{plain.question} {plain.text}"]
    index = FaqIndex.build([pin, plain], embedder)
    assert len(index.owners) == 9 and list(index.owners).count(0) == 7
    # a question in the words of the Spanish answer finds the entry by that row
    query = embedder.embed(["Ajustes de la tarjeta, Restablecer PIN"])[0]
    rows = index.index.reconstruct_n(0, index.index.ntotal) @ query
    assert int(rows.argmax()) == 5 and index.search_vector(query, 1)[0].passage.id == "reset-pin"


@pytest.mark.parametrize(("entry", "message"), [
    ("- question: {en: Q, Spanish: P}\n  answer: A.\n", r"'Spanish' is not a language code"),
    ("- question: {en: Q, es: ''}\n  answer: A.\n", r"\[0\]\.question\.es: must be a non-empty"),
    ("- question: {en: Q}\n  answer: {es: R., en: A.}\n", "starts with 'en' and the answer with"),
    ("- question: {}\n  answer: A.\n", "or a mapping of language code to text"),
])
def test_mistakes_are_named(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "faq.yaml"
    path.write_text(entry, encoding="utf-8")
    with pytest.raises(SourceError, match=message) as caught:
        load(path)
    assert "faq.yaml" in str(caught.value)
