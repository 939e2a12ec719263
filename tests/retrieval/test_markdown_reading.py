"""Markdown read as a person reads it: front matter is metadata, template tags, bold marks,
raw HTML and Q:/A: labels never reach a passage, and errors keep the file's line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import ChunkSettings, Passage, load_source
from retrieval.errors import SourceError

CHUNKS = ChunkSettings(words=60, overlap=10)


def load(path: Path) -> list[Passage]:
    return load_source(path, display=path.name, chunking=CHUNKS)


JEKYLL = """---
title: Card help
category: cards
layout: page
permalink: /help/cards/
---
{% include toc.html %}
Our cards work in {{ site.countries | size }} countries.

{% comment %}
## Old section
SECRET-DRAFT about a card we no longer sell.
{% endcomment %}

## **How do I freeze my card?**

**Q:** How do I freeze my card?
**A:** Open the app and tap <strong>Freeze</strong>.<br>
It takes a <span class="hl">second</span>.

{{< notice warning >}}
A frozen card still receives refunds.
{{< /notice >}}

## Limits

{{% details "Daily limits" %}}
You can spend up to __£5,000__ a day.
{{% /details %}}
"""


def test_front_matter_template_tags_and_markup_never_reach_a_passage(tmp_path: Path) -> None:
    path = tmp_path / "cards.md"
    path.write_text(JEKYLL)
    intro, freeze, limits = load(path)
    assert (intro.id, intro.title, intro.category) == ("cards", "Card help", "cards")
    assert intro.text == "Our cards work in countries."
    assert freeze.question == "How do I freeze my card?"  # a question once bold is dropped
    assert freeze.text == ("How do I freeze my card?\nOpen the app and tap Freeze.\n"
                           "It takes a second.\n\nA frozen card still receives refunds.")
    assert (limits.id, limits.title, limits.text) == (
        "cards-limits", "Card help > Limits", "You can spend up to £5,000 a day.")
    everything = " ".join(p.text + p.title for p in (intro, freeze, limits))
    for hidden in ("layout", "permalink", "{", "}", "%", "**", "<", "Q:", "A:", "SECRET",
                   "Old section", "notice", "details"):
        assert hidden not in everything, hidden


def test_errors_after_front_matter_and_tags_keep_the_files_line_numbers(
        tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text("---\ntitle: T\n---\n{% raw %}\n{% endraw %}\n## Is it free?\n\n"
                    "<!-- ask finance -->\n")
    with pytest.raises(SourceError, match=r"^broken\.md:6: Is it free\?: is all internal"):
        load(path)
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: [unclosed\n---\n\nText.\n")
    with pytest.raises(SourceError, match=r"^bad\.md:1: front matter is not valid YAML"):
        load(bad)


def test_toml_front_matter_a_leading_rule_and_notes_in_bold(tmp_path: Path) -> None:
    hugo = tmp_path / "hugo.md"
    hugo.write_text('+++\ntitle = "Opening hours"\n+++\nWe open at 9.\n')
    (passage,) = load(hugo)
    assert (passage.title, passage.text) == ("Opening hours", "We open at 9.")
    rule = tmp_path / "rule.md"  # a horizontal rule at the top is text, not front matter
    rule.write_text("---\nWe open at 9.\n---\n\n**Internal note:** staff code 4411.\n")
    (passage,) = load(rule)
    assert passage.text == "--- We open at 9. ---" and "4411" not in passage.text


def test_site_markup_leaves_clean_text_with_links(tmp_path: Path) -> None:
    path = tmp_path / "email.md"
    path.write_text("---\ntitle: Change your email\n---\n## Steps\n\n1. Open the [Web Vault]"
                    "(/article/web-vault/) and select **Settings**.\n![Settings](/images/s.png)"
                    "\n2. Whitelist `no-reply@example.com`; see [the FAQ](#faq) or [Contact Us]"
                    "(https://example.com/contact){:target=\"\\_blank\"}.\n")
    (steps,) = load(path)
    assert steps.text == ("1. Open the Web Vault and select Settings.\n\n2. Whitelist "
                          "`no-reply@example.com`; see the FAQ or [Contact Us]"
                          "(https://example.com/contact).")


def test_headings_nest_and_name_their_passages(tmp_path: Path) -> None:
    path = tmp_path / "sso.md"
    path.write_text("# Login with SSO\n\n## Enable for Desktop\n\nStep one.\n\n### Permissions"
                    "\n\nAdmins only.\n\n## Permissions\n\nOwners too.\n\n## Enable for Desktop"
                    "\n\nAgain.\n")
    found = [(p.id, p.title) for p in load(path)]
    assert found == [
        ("sso-enable-for-desktop", "Login with SSO > Enable for Desktop"),
        ("sso-enable-for-desktop-permissions", "Login with SSO > Enable for Desktop > Permissions"),
        ("sso-permissions", "Login with SSO > Permissions"),
        ("sso-enable-for-desktop-2", "Login with SSO > Enable for Desktop"),
    ]
