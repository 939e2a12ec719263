"""The lead's view: review the bot's answers into the learning loop (``/desk/review``) and
a dashboard of how the bot is doing (``/desk/dashboard``), for the agents named in
``handoff.leads`` (docs/lead.md).

- :mod:`~bot.server.lead.access`: the lead check, the date range, the pages' files
- :mod:`~bot.server.lead.review`: the answers, the FAQ's entries, marks
- :mod:`~bot.server.lead.dashboard`: numbers, charts and knowledge gaps
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from bot.definition.config import BotDefinition
from bot.server.desk.access import LEADS
from bot.server.lead.access import asset
from bot.server.lead.dashboard import Dashboard
from bot.server.lead.review import Review
from bot.sessions.store import SessionStore
from retrieval.embedder import Embedder
from retrieval.passages import Passage


def install_lead(app: web.Application, bot: BotDefinition, store: Callable[[], SessionStore],
                 passages: Callable[[], Mapping[str, Passage]],
                 embedder: Callable[[], Embedder | None]) -> None:
    """Add the lead's pages to ``app`` (after the desk's: they share its sign-in)."""
    handoff = bot.config.handoff
    app[LEADS] = frozenset(handoff.leads if handoff else ())
    dashboard = Dashboard(store, embedder, ttl_s=bot.config.sessions.ttl_minutes * 60,
                          evaluation=bot.build_dir / "eval" / "answers.json")
    app.add_routes([*Review(store, passages).routes(), *dashboard.routes(),
                    web.get("/desk/lead/static/{name}", asset)])


__all__ = ["install_lead"]
