"""Help-center exports as their APIs return them, field for field, for the export tests.

Zendesk Guide: Help Center API, Articles, "JSON format" and "List Articles"
(``GET /api/v2/help_center/articles.json``): each article object has every documented field,
and a page has the offset-pagination envelope. Intercom: REST API, Articles, "List all
articles" (``GET /articles``): the article objects of its documented example response, and
the list envelope (``type``, ``pages``, ``total_count``, ``data``).

Not a test module: ``test_help_center_exports.py`` imports it.
"""

from __future__ import annotations

from typing import Any

HOST = "https://acme.zendesk.com"


def zendesk_article(article_id: int, title: str, body: str | None, **changes: Any
                    ) -> dict[str, Any]:
    """A Zendesk Guide article object with all its documented fields."""
    locale = changes.get("locale", "en-us")
    slug = "-".join(title.split())
    article: dict[str, Any] = {
        "id": article_id,
        "url": f"{HOST}/api/v2/help_center/{locale}/articles/{article_id}.json",
        "html_url": f"{HOST}/hc/{locale}/articles/{article_id}-{slug}",
        "author_id": 28226296456851,
        "comments_disabled": False,
        "draft": False,
        "promoted": False,
        "position": 0,
        "vote_sum": 3,
        "vote_count": 5,
        "section_id": 28523491991699,
        "created_at": "2024-04-17T17:18:10Z",
        "updated_at": "2024-05-02T09:41:27Z",
        "name": title,
        "title": title,
        "source_locale": "en-us",
        "locale": locale,
        "outdated": False,
        "outdated_locales": [],
        "edited_at": "2024-05-02T09:41:27Z",
        "user_segment_id": None,
        "user_segment_ids": [],
        "permission_group_id": 28523398501139,
        "content_tag_ids": [],
        "label_names": ["cards"],
        "body": body,
    }
    article.update(changes)
    return article


def zendesk_page(articles: list[dict[str, Any]], *, page: int = 1, pages: int = 1
                 ) -> dict[str, Any]:
    """One page of ``GET /api/v2/help_center/articles.json`` (offset pagination)."""
    link = f"{HOST}/api/v2/help_center/articles.json?page={{}}&per_page=30"
    return {
        "articles": articles,
        "next_page": link.format(page + 1) if page < pages else None,
        "previous_page": link.format(page - 1) if page > 1 else None,
        "count": 30 * (pages - 1) + len(articles),
        "page": page,
        "per_page": 30,
        "page_count": pages,
        "sort_by": "position",
        "sort_order": "asc",
    }


def intercom_article(article_id: str, title: str, body: str | None, **changes: Any
                     ) -> dict[str, Any]:
    """An Intercom article object as ``GET /articles`` lists it."""
    slug = "-".join(title.lower().split())
    article: dict[str, Any] = {
        "id": article_id,
        "type": "article",
        "workspace_id": "this_is_an_id33_that_should_be_at_least_4",
        "parent_id": 145,
        "parent_type": "collection",
        "parent_ids": [],
        "title": title,
        "description": "",
        "body": body,
        "author_id": 991267254,
        "state": "published",
        "created_at": 1717021340,
        "updated_at": 1717021340,
        "url": f"http://help-center.test/myapp-33/en/articles/{article_id}-{slug}",
    }
    article.update(changes)
    return article


def intercom_list(articles: list[dict[str, Any]]) -> dict[str, Any]:
    """The response of ``GET /articles``."""
    return {
        "type": "list",
        "pages": {"type": "pages", "page": 1, "per_page": 25, "total_pages": 1},
        "total_count": len(articles),
        "data": articles,
    }


CARD_FEES = """\
<p>Paying by card in pounds is free.</p>
<h2 id="h_01HX5K2Z">Fees abroad</h2>
<p>Card payments in another currency cost 2.75% of the amount.</p>
<h3 id="h_01HX5K3A">Cash withdrawals</h3>
<p>Cash machines abroad charge a flat fee of £1.50 for each withdrawal.</p>
<ul><li>Free in the UK</li><li>£1.50 abroad</li></ul>
<h2 id="h_01HX5K4B">Refunds</h2>
<p>A refunded payment returns its fee within 5 working days.</p>
"""
LOST_CARD = """\
<p>Freeze your card in the app at once: tap <strong>Card</strong>, then
<strong>Freeze</strong>.</p>
<h2>Ordering a new card</h2>
<p>A replacement card arrives within 3 working days and costs nothing.</p>
"""
