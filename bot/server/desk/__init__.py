"""The desk: the people behind the bot answer handed-off conversations at ``/desk``.

- :mod:`~bot.server.desk.signins`: credentials (``handoff.agents``) and sign-ins
- :mod:`~bot.server.desk.access`: sign-in page, the desk page, session and CSRF checks
- :mod:`~bot.server.desk.inbox`: queues, transcript, take / reply / release / resolve / note
- :mod:`~bot.server.desk.transcript`: history, citations, decisions and notes, in order
- :mod:`~bot.server.desk.hub`: live updates over a WebSocket, presence
- :mod:`~bot.server.desk.relay`: the workers' shared channel (Redis pub/sub)
- :mod:`~bot.server.desk.presence`: who is online on any worker (Redis)
- :mod:`~bot.server.desk.assist`: suggested answers for the customer's last message
- :mod:`~bot.server.desk.assignment`: new handoffs to online agents (``handoff.assignment``)

docs/desk.md describes it for users.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from bot.definition.dialogue import AssignmentSettings
from bot.server.agent_api import AgentDesk
from bot.server.desk.access import DESK_TITLE, ROUTES, SIGN_INS
from bot.server.desk.assignment import Assigner
from bot.server.desk.assist import Search
from bot.server.desk.hub import DeskHub, Push
from bot.server.desk.inbox import Inbox
from bot.server.desk.relay import DeskRelay
from bot.server.desk.signins import SignIns
from bot.sessions.factory import redis_prefix
from channels.registry import CHANNELS, pushes_to_local_connections
from retrieval.passages import Passage

DESK_HUB: web.AppKey[DeskHub] = web.AppKey("desk_hub", DeskHub)


def install_desk(app: web.Application, api: AgentDesk,
                 passages: Callable[[], Mapping[str, Passage]], search: Search,
                 push: Push) -> DeskHub:
    """Add the desk's routes to ``app`` over ``api``'s conversation rules; ``passages``:
    the served FAQ's passages by id, ``search``: the served FAQ's search (both read at
    request time); ``push``: a person's message to a customer's channel in this worker.
    Returns the hub that customer turns report to (:meth:`DeskHub.watch`) and that delivers
    people's messages (:meth:`DeskHub.deliver`). With ``sessions.store: redis`` the hub
    shares everything with the bot's other workers (:mod:`~bot.server.desk.relay`)."""
    handoff, sessions = api.config.handoff, api.config.sessions
    relay = DeskRelay(sessions.redis_url, redis_prefix(api.config)) \
        if sessions.store == "redis" and handoff is not None else None

    def local(channel: str) -> bool:
        return pushes_to_local_connections(app.get(CHANNELS, {}).get(channel))

    hub = DeskHub(relay, push, local)
    app[DESK_HUB] = hub
    app[DESK_TITLE] = api.config.name
    app[SIGN_INS] = SignIns(dict(handoff.agents) if handoff else {}, api.store)
    inbox = Inbox(api, hub, passages, search)
    inbox.app = app
    Assigner(handoff.assignment if handoff else AssignmentSettings(), api, hub,
             inbox.take_for).install()
    app.add_routes([*ROUTES, *inbox.routes()])
    app.on_startup.append(hub.start)
    app.on_shutdown.append(hub.close)
    return hub


__all__ = ["DESK_HUB", "DeskHub", "install_desk"]
