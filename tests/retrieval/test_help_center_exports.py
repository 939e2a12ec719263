"""Help-center exports as FAQ sources: Zendesk Guide and Intercom articles as their APIs
return them (``help_center_exports.py`` replays the documented objects field for field),
recognised by content, each published article a document cited by its web address."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.converters.router import export_reader_for
from retrieval.documents import ChunkSettings, Document, read_source
from retrieval.errors import SourceError
from retrieval.knowledge import FaqSource, load_passages
from retrieval.settings import FaqSettings
from tests.bot.dialogue_support import runtime_for
from tests.retrieval.help_center_exports import (
    CARD_FEES,
    LOST_CARD,
    intercom_article,
    intercom_list,
    zendesk_article,
    zendesk_page,
)

from ..conftest import MakeBot

CHUNKS = ChunkSettings(words=40, overlap=10)
FEES_URL = "https://acme.zendesk.com/hc/en-us/articles/360001-Card-fees"


def _write(path: Path, *pages: dict[str, Any]) -> Path:
    lines = [json.dumps(page) for page in pages]
    path.write_text(lines[0] if path.suffix == ".json" else "\n".join(lines) + "\n")
    return path


def _read(path: Path) -> Document:
    return read_source(path, display=f"faq/{path.name}", chunking=CHUNKS)


def _zendesk(tmp_path: Path, name: str = "zendesk.json") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return _write(tmp_path / name, zendesk_page([
        zendesk_article(360001, "Card fees", CARD_FEES),
        zendesk_article(360002, "Lost card", LOST_CARD),
        zendesk_article(360003, "New fees from June", "<p>Not announced yet.</p>", draft=True),
    ]))


def test_a_zendesk_page_gives_each_published_article_under_its_headings(
        tmp_path: Path) -> None:
    document = _read(_zendesk(tmp_path))
    assert (document.kind, document.documents, document.drafts) == ("Zendesk", 2, 1)
    assert document.warnings == () and document.pages == 0
    by_id = {p.id: p for p in document.passages}
    assert list(by_id) == [
        "zendesk-360001", "zendesk-360001-fees-abroad",
        "zendesk-360001-fees-abroad-cash-withdrawals", "zendesk-360001-refunds",
        "zendesk-360002", "zendesk-360002-ordering-a-new-card"]
    cash = by_id["zendesk-360001-fees-abroad-cash-withdrawals"]
    assert cash.title == "Card fees > Fees abroad > Cash withdrawals"
    assert cash.text == ("Cash machines abroad charge a flat fee of £1.50 for each "
                         "withdrawal.\n\n- Free in the UK\n- £1.50 abroad")
    # an h2 after an h3 is under the title again, not under the h2 before it
    assert by_id["zendesk-360001-refunds"].title == "Card fees > Refunds"
    assert by_id["zendesk-360001"].source == FEES_URL
    assert cash.source == f"{FEES_URL}#h_01HX5K3A"  # the heading's anchor
    assert by_id["zendesk-360002"].text == "Freeze your card in the app at once: tap Card, " \
        "then Freeze."  # no markup
    assert not any("Not announced" in p.text for p in document.passages)  # the draft
    assert {str(place) for place in document.places} == {
        "faq/zendesk.json, article 360001", "faq/zendesk.json, article 360002"}


def test_ids_do_not_change_when_other_articles_do(tmp_path: Path) -> None:
    before = _read(_zendesk(tmp_path)).passages
    _write(tmp_path / "zendesk.json", zendesk_page([
        zendesk_article(360009, "Opening hours", "<h2>Phone</h2><p>We answer 8am to 8pm.</p>"),
        zendesk_article(360002, "Lost card", LOST_CARD),
        zendesk_article(360001, "Card charges", "<h2>Fees abroad</h2><p>Now 3%.</p>"),
    ]))
    after = _read(tmp_path / "zendesk.json").passages
    lost = [(p.id, p.text, p.source) for p in before if p.id.startswith("zendesk-360002")]
    assert lost == [(p.id, p.text, p.source) for p in after
                    if p.id.startswith("zendesk-360002")]
    assert "zendesk-360001-fees-abroad" in {p.id for p in after}  # retitled, same id


def test_several_pages_in_json_lines_or_a_folder_of_pages(tmp_path: Path) -> None:
    first = zendesk_page([zendesk_article(360001, "Card fees", CARD_FEES)], page=1, pages=2)
    second = zendesk_page([zendesk_article(360002, "Lost card", LOST_CARD),
                           zendesk_article(360004, "Old", "<p>Old.</p>", draft=True)],
                          page=2, pages=2)
    lines = _read(_write(tmp_path / "articles.jsonl", first, second))
    assert (lines.kind, lines.documents, lines.drafts) == ("Zendesk", 2, 1)
    folder = tmp_path / "pages"
    folder.mkdir()
    files = [_write(folder / "page-1.json", first), _write(folder / "page-2.json", second)]
    passages = load_passages([FaqSource(f, f.name, f"faq/{f.name}") for f in files],
                             FaqSettings(sources=("faq/",), chunk_words=40, chunk_overlap=10))
    assert [p.id for p in passages] == [p.id for p in lines.passages]
    # a .jsonl file of FAQ entries is still read as entries
    entries = tmp_path / "entries.jsonl"
    entries.write_text('{"question": "Is it free?", "answer": "Yes."}\n')
    assert export_reader_for(entries) is None
    assert [p.id for p in _read(entries).passages] == ["is-it-free"]


def test_intercom_articles_are_read_and_drafts_left_out(tmp_path: Path) -> None:
    path = _write(tmp_path / "intercom.json", intercom_list([
        intercom_article("35", "Lost card", LOST_CARD),
        intercom_article("36", "Card fees", CARD_FEES, state="draft"),
        intercom_article("37", "Opening hours", "<p>We answer 8am to 8pm.</p>", url=None),
    ]))
    document = _read(path)
    assert (document.kind, document.documents, document.drafts) == ("Intercom", 2, 1)
    assert [(p.id, p.source) for p in document.passages] == [
        ("intercom-35", "http://help-center.test/myapp-33/en/articles/35-lost-card"),
        ("intercom-35-ordering-a-new-card",
         "http://help-center.test/myapp-33/en/articles/35-lost-card"),
        ("intercom-37", "faq/intercom.json"),  # no web address: the file is cited
    ]
    assert document.passages[0].title == "Lost card"


def test_one_article_as_the_apis_show_it(tmp_path: Path) -> None:
    one = _read(_write(tmp_path / "one.json",
                       {"article": zendesk_article(360002, "Lost card", LOST_CARD)}))
    assert [p.id for p in one.passages] == ["zendesk-360002", "zendesk-360002-ordering-a-new-card"]
    other = _read(_write(tmp_path / "other.json", intercom_article("35", "Lost card", LOST_CARD)))
    assert (other.kind, [p.id for p in other.passages]) == (
        "Intercom", ["intercom-35", "intercom-35-ordering-a-new-card"])


def test_a_translation_takes_its_locale_and_a_repeated_article_is_read_once(
        tmp_path: Path) -> None:
    french = zendesk_article(360002, "Carte perdue", "<p>Bloquez votre carte dans l'app.</p>",
                             locale="fr")
    document = _read(_write(tmp_path / "zendesk.json", zendesk_page([
        zendesk_article(360002, "Lost card", LOST_CARD), french, french])))
    assert [p.id for p in document.passages] == [
        "zendesk-360002", "zendesk-360002-ordering-a-new-card", "zendesk-360002-fr"]
    assert document.passages[-1].source == \
        "https://acme.zendesk.com/hc/fr/articles/360002-Carte-perdue"
    assert document.warnings == ("faq/zendesk.json, article 360002 (fr): is in the file "
                                 "twice; read once",)


def _page_with(**changes: Any) -> dict[str, Any]:
    """A page whose second article has ``changes``."""
    second = zendesk_article(360002, "Lost card", LOST_CARD)
    second.update(changes)
    return zendesk_page([zendesk_article(360001, "Card fees", CARD_FEES), second])


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.json", '{"articles": [', r"^faq/a\.json:1: invalid JSON: Expecting value"),
    ("a.json", "", r"^faq/a\.json: is empty: expected one page of Zendesk Guide articles"),
    ("a.json", '{"faq": []}', r"^faq/a\.json: is not a help-center export: expected one page "
                              r"of Zendesk Guide articles .* or an Intercom article list"),
    ("a.json", _page_with(html_url=None), r"^faq/a\.json: articles\[1\]\.html_url: must be "
                                          r"the article's web address .*; it is missing"),
    ("a.json", _page_with(html_url="/hc/en-us/articles/2"),
     r"^faq/a\.json: articles\[1\]\.html_url: must be the article's web address"),
    ("a.json", _page_with(body=["<p>"]), r"^faq/a\.json: articles\[1\]\.body: must be the "
                                         r"article's body as a string of HTML"),
    ("a.json", _page_with(draft="no"), r"^faq/a\.json: articles\[1\]\.draft: must be true or "
                                       r"false, not 'no'"),
    ("a.json", _page_with(id=None), r"^faq/a\.json: articles\[1\]\.id: must be the article's "
                                    r"id .*; it is missing"),
    ("a.json", _page_with(title="", name=""), r"^faq/a\.json: articles\[1\]\.title: must be a "
                                              r"non-empty string"),
    ("a.json", zendesk_page(["Card fees"]),  # type: ignore[list-item]
     r"^faq/a\.json: articles\[0\]: must be an article object"),
    ("a.json", intercom_list([intercom_article("35", "Lost card", LOST_CARD,
                                               state="archived")]),
     r"^faq/a\.json: data\[0\]\.state: must be 'published' or 'draft', not 'archived'"),
    ("a.json", intercom_list([{"type": "collection", "id": "9"}]),
     r"^faq/a\.json: data\[0\]\.type: must be 'article'"),
    ("a.jsonl", f"{json.dumps(_page_with())}\n{json.dumps(_page_with(draft=1))}\n",
     r"^faq/a\.jsonl:2: articles\[1\]\.draft: must be true or false, not 1"),
    ("a.jsonl", f"{json.dumps(_page_with())}\n{{\"articles\": [\n",
     r"^faq/a\.jsonl:2: invalid JSON"),
    ("a.jsonl", f"{json.dumps(_page_with())}\n"
                f"{json.dumps(intercom_list([intercom_article('35', 'Lost', LOST_CARD)]))}\n",
     r"^faq/a\.jsonl: mixes Zendesk and Intercom pages"),
    ("a.json", zendesk_page([zendesk_article(1, "A", "<p>a</p>", draft=True),
                             zendesk_article(2, "B", "<p>b</p>", draft=True)]),
     r"^faq/a\.json: has no published article with text to read \(2 drafts left out\)"),
])
def test_a_malformed_export_names_the_file_and_field(
        tmp_path: Path, name: str, content: str | dict[str, Any], message: str) -> None:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(SourceError, match=message):
        _read(path)


def test_an_article_without_text_is_a_warning(tmp_path: Path) -> None:
    document = _read(_write(tmp_path / "z.json", _page_with(body='<p><img src="x.png"></p>')))
    assert document.documents == 1
    assert document.warnings == ("faq/z.json, article 360002 ('Lost card'): has no text to "
                                 "read",)


BOT_YAML = """
name: help_bot
faq:
  sources: [faq/]
  top_k: 2
  answer_threshold: 0.5
fallback:
  message: Sorry, I do not know.
channels:
  rest:
    auth: none
"""


def test_validate_counts_articles_and_drafts(make_bot: MakeBot,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(BOT_YAML, files={"faq/extra.yaml": "- question: Is it free?\n"
                                                       "  answer: Yes.\n"})
    _zendesk(root / "faq")
    assert main(["validate", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("faq.sources[0] faq/: 3 documents (1 YAML, 2 Zendesk), 7 passages, "
                        "1 draft left out")


async def test_a_bot_trained_from_a_zendesk_export_answers_with_the_article_link(
        make_bot: MakeBot, embedder: Any) -> None:
    root = make_bot(BOT_YAML, files={})
    _zendesk(root / "faq")
    runtime: BotRuntime = runtime_for(root, embedder, None)
    reply = await runtime.dialogue.handle(
        UserMessage("u1", "how much does it cost to take cash out of a machine abroad?"))
    assert reply.kind == "faq" and "£1.50" in reply.text and "<" not in reply.text
    assert reply.citations[0].passage_id == "zendesk-360001-fees-abroad-cash-withdrawals"
    assert reply.citations[0].source == f"{FEES_URL}#h_01HX5K3A"
