"""A bot's FAQ folder with PDF, Word and HTML files: what `bot validate` reports for each
source, and duplicate ids named with both places by `bot validate` and `bot train` alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.build import build_index
from bot.cli import main
from bot.definition.loader import load_bot
from bot.errors import ConfigError
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import SourceError
from retrieval.knowledge import FaqSource, load_passages
from retrieval.settings import FaqSettings
from tests.retrieval.made_documents import prose_pdf, sentences, word_document

from ..conftest import MakeBot

BOT_YAML = """
name: docs_bot
faq:
  sources: [faq/, more/extra.yaml]
channels:
  rest:
    auth: none
"""
FEES = "- id: fees\n  question: What are the fees?\n  answer: None.\n"
MORE_FEES = "- question: When are you open?\n  answer: 9 to 5.\n" + FEES


def _sources(folder: Path, *names: str) -> list[FaqSource]:
    return [FaqSource(folder / n, n, f"faq/{n}") for n in names]


def test_two_entries_with_one_id_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FEES)
    (tmp_path / "b.yaml").write_text(MORE_FEES)
    with pytest.raises(SourceError) as info:
        load_passages(_sources(tmp_path, "a.yaml", "b.yaml"), FaqSettings(sources=("x",)))
    assert str(info.value).startswith(
        "faq/b.yaml:3: duplicate FAQ id 'fees', also at faq/a.yaml:1")


def _document_bot(make_bot: MakeBot) -> Path:
    root = make_bot(BOT_YAML,
                    files={"more/extra.yaml": "- question: Is it free?\n  answer: Yes.\n"})
    faq = root / "faq"
    faq.mkdir()
    prose_pdf(faq / "manual.pdf", [[" ".join(sentences(3))], [], [" ".join(sentences(2))]],
              headings=["Cards", "", "Transfers"], image_pages=[2])
    word_document(faq / "guide.docx", title="Guide", blocks=[
        ("heading 1", "Permissions"), ("text", "Admins can add users.")])
    (faq / "help.html").write_text("<nav>Menu</nav><h1>Help</h1><h2>Permissions</h2>"
                                   "<p>Agents can answer chats.</p>")
    return root


def test_validate_reports_what_each_source_read_and_pages_without_text(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = _document_bot(make_bot)
    assert main(["validate", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "faq.sources[0] faq/: 3 documents (1 HTML, 1 PDF, 1 Word), 3 pages, 4 passages, "
        "1 warning",
        f"warning: {root}/faq/manual.pdf, page 2: no text layer (a scanned page? turn faq.ocr "
        "on to read it with OCR)",
        "faq.sources[1] more/extra.yaml: 1 document (1 YAML), 1 passage",
        f"{root}/bot.yaml: ok — bot 'docs_bot', 0 intents, 0 responses, 5 FAQ passages, "
        "channels: rest",
    ]


def test_validate_and_train_refuse_a_duplicate_id_with_both_places(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str], embedder: SentenceEmbedder) -> None:
    root = _document_bot(make_bot)
    (root / "faq" / "a.yaml").write_text(FEES)
    (root / "more" / "extra.yaml").write_text(MORE_FEES)
    assert main(["validate", str(root)]) == 2
    error = capsys.readouterr().err
    expected = (r"test_bot/more/extra\.yaml:3: duplicate FAQ id 'fees', also at "
                r"\S*test_bot/faq/a\.yaml:1; give one of them another explicit 'id'")
    assert re.search(expected, error), error
    with pytest.raises(ConfigError) as info:
        build_index(load_bot(root), embedder)
    assert re.search(expected, str(info.value))
