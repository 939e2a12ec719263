"""PDF, Word, HTML and plain-text files as FAQ sources: real files written by real tools
(fpdf2, python-docx, pypdf), read through the converters into passages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from retrieval.converters.router import SUFFIXES, converter_for
from retrieval.documents import SUFFIXES as FAQ_SUFFIXES
from retrieval.documents import ChunkSettings, Document, read_source
from retrieval.errors import SourceError
from tests.retrieval.made_documents import (
    encrypt_pdf,
    manual_pdf,
    prose_pdf,
    sentences,
    table_pdf,
    two_column_pdf,
    word_document,
)

CHUNKS = ChunkSettings(words=40, overlap=10)


def read(path: Path) -> Document:
    return read_source(path, display=f"faq/{path.name}", chunking=CHUNKS)


def test_each_format_has_its_converter_and_folders_read_them() -> None:
    assert {".pdf", ".docx", ".html", ".htm", ".txt"} == set(SUFFIXES)
    assert set(SUFFIXES) < set(FAQ_SUFFIXES)
    assert [type(converter_for(s)).__name__ for s in (".PDF", ".docx", ".htm", ".txt")] == [
        "PdfConverter", "DocxConverter", "HtmlConverter", "TextConverter"]
    assert converter_for(".rtf") is None


def test_pdf_pages_are_cited_under_the_outline_and_a_scanned_page_is_named(
        tmp_path: Path) -> None:
    path = tmp_path / "fees.pdf"
    first, third = sentences(2), sentences(12, start=3)
    prose_pdf(path, [[" ".join(first)], [], [" ".join(third[:6]), " ".join(third[6:])]],
              headings=["Card fees", "", "Transfer fees"], image_pages=[2])
    document = read(path)
    assert (document.kind, document.pages) == ("PDF", 3)
    assert document.warnings == ("faq/fees.pdf, page 2: no text layer (a scanned page? turn "
                                 "faq.ocr on to read it with OCR)",)
    first_page = [p for p in document.passages if p.source == "faq/fees.pdf, page 1"]
    third_page = [p for p in document.passages if p.source == "faq/fees.pdf, page 3"]
    assert len(first_page) + len(third_page) == len(document.passages)
    assert [p.id for p in first_page] == ["fees-card-fees"]
    assert first_page[0].text == " ".join(first)  # the heading is not glued to the text
    assert first_page[0].title == "fees > Card fees"
    assert [p.id for p in third_page] == ["fees-transfer-fees"] + [
        f"fees-transfer-fees-{n}" for n in range(2, len(third_page) + 1)]
    assert all(s in " ".join(p.text for p in third_page) for s in third)
    assert {str(place) for place in document.places} == {"faq/fees.pdf, page 1",
                                                         "faq/fees.pdf, page 3"}


def test_pdf_sections_that_start_mid_page_keep_their_own_headings(tmp_path: Path) -> None:
    path = tmp_path / "guide.pdf"
    fees, cards = sentences(3), sentences(2, start=3)
    transfers = [" ".join(sentences(8, start=10 + 8 * n)) for n in range(9)]  # to page 2
    hours = sentences(2, start=90)
    manual_pdf(path, [(0, "Fees", [" ".join(fees)]), (1, "Card fees", [" ".join(cards)]),
                      (1, "Transfer fees", transfers), (0, "Opening hours", [" ".join(hours)])])
    document = read(path)
    assert document.pages == 2
    placed = [(p.title, p.source.rsplit(" ", 1)[-1]) for p in document.passages]
    assert list(dict.fromkeys(placed)) == [
        ("guide > Fees", "1"), ("guide > Fees > Card fees", "1"),
        ("guide > Fees > Transfer fees", "1"), ("guide > Fees > Transfer fees", "2"),
        ("guide > Opening hours", "2")]

    def under(title: str) -> str:
        return " ".join(" ".join(p.text for p in document.passages if p.title == title).split())

    assert under("guide > Fees") == " ".join(fees)
    assert under("guide > Fees > Card fees") == " ".join(cards)
    assert all(s in under("guide > Fees > Transfer fees") for p in transfers
               for s in p.split(". "))
    assert under("guide > Opening hours") == " ".join(hours)
    assert [p.id for p in document.passages if p.title == "guide > Opening hours"] == [
        "guide-opening-hours"]


def test_two_columns_and_a_table_read_in_order(tmp_path: Path) -> None:
    paragraphs = [" ".join(sentences(4, start=40 + 4 * n)) for n in range(8)]
    two_column_pdf(tmp_path / "columns.pdf", paragraphs)
    text = " ".join(p.text for p in read(tmp_path / "columns.pdf").passages)
    flat = " ".join(text.split())
    assert all(sentence in flat for p in paragraphs for sentence in p.split(". "))
    rows = [["Plan", "Monthly fee"], ["Basic", "£0"], ["Plus", "£3"]]
    table_pdf(tmp_path / "plans.pdf", rows)
    (passage,) = read(tmp_path / "plans.pdf").passages
    assert "Basic £0" in passage.text and "Plus £3" in passage.text


def test_a_pdf_that_is_only_scans_damaged_or_locked_is_a_clear_error(tmp_path: Path) -> None:
    scans = tmp_path / "scans.pdf"
    prose_pdf(scans, [[], []], image_pages=[1, 2])
    with pytest.raises(SourceError, match=r"^faq/scans\.pdf: no page has a text layer"):
        read(scans)
    written = tmp_path / "ok.pdf"
    prose_pdf(written, [["Cards arrive in five days."]])
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(written.read_bytes()[:300])
    with pytest.raises(SourceError, match=r"^faq/damaged\.pdf: is not a readable PDF"):
        read(damaged)
    locked = tmp_path / "locked.pdf"
    encrypt_pdf(written, locked)
    with pytest.raises(SourceError, match=r"^faq/locked\.pdf: is encrypted"):
        read(locked)
    restricted = tmp_path / "restricted.pdf"  # only an owner password: opens for reading
    encrypt_pdf(written, restricted, password="")
    assert [p.text for p in read(restricted).passages] == ["Cards arrive in five days."]


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "team-guide.docx"
    word_document(path, title="Core properties title", blocks=[
        ("title", "Team guide"),
        ("text", "How we help customers."),
        ("heading 1", "Permissions"),
        ("text", "Only admins can add users."),
        ("bullet", "Open Settings."),
        ("bullet", "Choose Users."),
        ("heading 2", "Fees"),
        ("table", [["Plan", "Monthly fee"], ["Basic", "£0"], ["Plus", "£3"]]),
        ("heading 1", "Opening hours"),
        ("text", "Internal note: the night shift covers weekends."),
        ("text", "We answer from 9 to 5."),
    ])
    document = read(path)
    assert [(p.id, p.title, p.text) for p in document.passages] == [
        ("team-guide", "Team guide", "How we help customers."),
        ("team-guide-permissions", "Team guide > Permissions",
         "Only admins can add users.\n\n- Open Settings.\n\n- Choose Users."),
        ("team-guide-permissions-fees", "Team guide > Permissions > Fees",
         "Plan: Basic; Monthly fee: £0\n\nPlan: Plus; Monthly fee: £3"),
        ("team-guide-opening-hours", "Team guide > Opening hours", "We answer from 9 to 5."),
    ]
    assert document.kind == "Word" and document.pages == 0
    assert {p.source for p in document.passages} == {"faq/team-guide.docx"}


def test_docx_headings_nest_by_level_as_html_headings_do(tmp_path: Path) -> None:
    path = tmp_path / "handbook.docx"
    blocks: list[tuple[str, object]] = [
        ("heading 2", "Fees abroad"), ("text", "Card payments abroad are free."),
        ("heading 2", "Refunds"), ("text", "Refunds take five days."),
        ("heading 1", "Cards"),
        ("heading 3", "Lost card"), ("text", "Freeze it in the app."),
        ("heading 2", "Delivery"), ("text", "Cards arrive in a week."),
        ("heading 3", "Express delivery"), ("text", "Express costs £9.99."),
        ("heading 2", "Limits"), ("text", "The daily limit is £500."),
    ]
    word_document(path, title="Handbook", blocks=blocks)
    html = tmp_path / "handbook-page.html"
    html.write_text("<html><head><title>Handbook</title></head><body>" + "".join(
        f"<h{kind.split()[1]}>{content}</h{kind.split()[1]}>" if kind != "text"
        else f"<p>{content}</p>" for kind, content in blocks) + "</body></html>")
    expected = [
        ("Handbook > Fees abroad", "Card payments abroad are free."),
        ("Handbook > Refunds", "Refunds take five days."),
        ("Handbook > Cards > Lost card", "Freeze it in the app."),
        ("Handbook > Cards > Delivery", "Cards arrive in a week."),
        ("Handbook > Cards > Delivery > Express delivery", "Express costs £9.99."),
        ("Handbook > Cards > Limits", "The daily limit is £500."),
    ]
    word, page = read(path), read(html)
    assert [(p.title, p.text) for p in word.passages] == expected
    assert [(p.title, p.text) for p in page.passages] == expected
    assert [p.id for p in word.passages] == [
        "handbook-fees-abroad", "handbook-refunds", "handbook-cards-lost-card",
        "handbook-cards-delivery", "handbook-cards-delivery-express-delivery",
        "handbook-cards-limits"]


def test_a_docx_heading_style_based_on_a_heading_is_a_heading(tmp_path: Path) -> None:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    custom = document.styles.add_style("Team Heading", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = document.styles["Heading 2"]
    document.add_heading("Cards", level=1)
    document.add_paragraph("Delivery", style="Team Heading")
    document.add_paragraph("Cards arrive in a week.")
    document.save(str(tmp_path / "team.docx"))
    (passage,) = read(tmp_path / "team.docx").passages
    assert (passage.id, passage.title) == ("team-cards-delivery", "team > Cards > Delivery")


def test_a_docx_that_is_not_a_word_file_is_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "old.docx"
    text.write_bytes(b"\xd0\xcf\x11\xe0 an old binary .doc")
    with pytest.raises(SourceError, match=r"^faq/old\.docx: is not a Word \.docx file"):
        read(text)
    other = tmp_path / "other.docx"
    with zipfile.ZipFile(other, "w") as package:
        package.writestr("hello.txt", "not a Word package")
    with pytest.raises(SourceError, match=r"^faq/other\.docx: is not a readable Word"):
        read(other)


PAGE = """<!doctype html>
<html><head><title>Returns | Acme</title><style>p { color: red }</style>
<script>var tracking = "SCRIPT-TEXT";</script></head>
<body class="has-cookie-banner">
<header class="site"><a href="/">Acme home</a> SITE-HEADER</header>
<nav><ul><li>NAV-LINK</li></ul></nav>
<div id="cookie-consent">We use cookies. <button>Accept all</button></div>
<div class="promo-banner">BANNER-TEXT</div>
<h1>Returns</h1>
<p>You can <b>return</b> most items within <a href="/days">30 days</a>.</p>
<!-- Internal: COMMENT-TEXT -->
<h2>Refunds</h2>
<p>Refunds reach your card in 5 days.<br>Store credit is instant.</p>
<ul><li>Open your orders<ul><li>Pick the item</li></ul></li><li>Print the label</li></ul>
<h3>Fees</h3>
<table><tr><th>Item</th><th>Fee</th></tr><tr><td>Shoes</td><td>free</td></tr></table>
<aside>ASIDE-TEXT</aside>
<form><input name="q"><label>FORM-TEXT</label></form>
<h2>Exchanges</h2><p>Exchanges are free.</p>
<footer>FOOTER-TEXT &copy; Acme</footer>
</body></html>"""


def test_html_keeps_the_page_text_and_leaves_out_its_chrome(tmp_path: Path) -> None:
    path = tmp_path / "returns.html"
    path.write_text(PAGE)
    document = read(path)
    assert [(p.id, p.title) for p in document.passages] == [
        ("returns", "Returns | Acme"),  # the h1 repeats the title before the site's name
        ("returns-refunds", "Returns | Acme > Refunds"),
        ("returns-refunds-fees", "Returns | Acme > Refunds > Fees"),
        ("returns-exchanges", "Returns | Acme > Exchanges"),
    ]
    texts = [p.text for p in document.passages]
    assert texts[0] == "You can return most items within 30 days."
    assert texts[1] == ("Refunds reach your card in 5 days.\n\nStore credit is instant.\n\n"
                        "- Open your orders\n- Pick the item\n- Print the label")
    assert texts[2] == "Item: Shoes; Fee: free"
    everything = " ".join(texts) + " ".join(p.title for p in document.passages)
    for chrome in ("SCRIPT", "SITE-HEADER", "NAV", "cookies", "BANNER", "COMMENT", "ASIDE",
                   "FORM", "FOOTER", "color"):
        assert chrome not in everything


def test_html_reads_main_only_and_titles_from_the_first_h1(tmp_path: Path) -> None:
    path = tmp_path / "help.htm"
    path.write_text("<div>OUTSIDE-MAIN</div><main><article><header><h1>Card help</h1>"
                    "</header><p>Freeze a lost card in the app.</p></article></main>")
    (passage,) = read(path).passages
    assert (passage.title, passage.text) == ("Card help", "Freeze a lost card in the app.")
    binary = tmp_path / "junk.html"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SourceError, match=r"^faq/junk\.html: is not an HTML file"):
        read(binary)


def test_plain_text_title_paragraphs_and_junk(tmp_path: Path) -> None:
    path = tmp_path / "hours.txt"
    path.write_text("Opening hours\n\nWe open at 9.\nWe close at 5.\n\nSundays: closed.\n")
    (passage,) = read(path).passages
    assert (passage.id, passage.title) == ("hours", "Opening hours")
    assert passage.text == "We open at 9. We close at 5.\n\nSundays: closed."
    sentence = tmp_path / "note.txt"
    sentence.write_text("We are closed on bank holidays.\n")
    (passage,) = read(sentence).passages
    assert (passage.title, passage.text) == ("note", "We are closed on bank holidays.")
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(SourceError, match=r"^faq/junk\.txt: is not a text file"):
        read(junk)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\xe9 opening hours\n\nWe open at 9.".encode("latin-1"))
    with pytest.raises(SourceError, match=r"^faq/latin\.txt: is not UTF-8 text"):
        read(latin)


def test_the_same_heading_in_two_documents_or_twice_in_one_gets_its_own_id(
        tmp_path: Path) -> None:
    word_document(tmp_path / "admins.docx", title="Admins", blocks=[
        ("heading 1", "Permissions"), ("text", "Admins can add users."),
        ("heading 1", "Permissions"), ("text", "Admins can remove users."),
        ("heading 1", "Permissions 2"), ("text", "Admins can see invoices.")])
    (tmp_path / "agents.html").write_text(
        "<h2>Permissions</h2><p>Agents can answer chats.</p>")
    ids = [p.id for name in ("admins.docx", "agents.html")
           for p in read(tmp_path / name).passages]
    assert ids == ["admins-permissions", "admins-permissions-2", "admins-permissions-2-2",
                   "agents-permissions"]
    assert len(set(ids)) == len(ids)
