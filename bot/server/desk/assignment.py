"""Assignment: a new handoff goes to an agent online in the desk (``handoff.assignment``).

``round_robin`` gives each new conversation to the next online agent in turn (by name,
after the one assigned last); ``least_busy`` to the online agent holding the fewest. Agents
holding ``chat_limit`` conversations are skipped; when nobody can take it, the conversation
waits in the shared queue, and an agent who comes online gets the oldest waiting ones up
to their limit. ``off`` (the default) keeps the shared queue only. An assigned conversation
is taken as if the agent pressed *Take* (event ``handoff_taken`` with ``"via":
"assignment"``; the customer is told who joined). With several workers sharing Redis, the
online agents and the last one assigned are every worker's (:mod:`~bot.server.desk.presence`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.definition.dialogue import AssignmentSettings
from bot.dialogue.handoff import handoff_status
from bot.server.agent_api import AgentDesk
from bot.server.desk.hub import DeskHub

Take = Callable[[str, str], Awaitable[object]]  # (agent, conversation) -> taken


class Assigner:
    """Picks agents for waiting conversations and takes them on their behalf."""

    def __init__(self, settings: AssignmentSettings, api: AgentDesk, hub: DeskHub,
                 take: Take) -> None:
        self.settings = settings
        self.api = api
        self.hub = hub
        self.take = take
        self.last: str | None = None  # round robin: who was assigned last (here, or shared)

    def install(self) -> None:
        """Listen to the hub for new handoffs and agents coming online (unless ``off``)."""
        if self.settings.mode != "off":
            self.hub.on_handoff = self.assign
            self.hub.on_online = self.came_online

    async def _loads(self) -> Counter[str]:
        return Counter(str(s.state["handoff"].get("agent"))
                       for s in await self.api.handed_off(["active"]))

    def pick(self, online: list[str], loads: Counter[str]) -> str | None:
        """The agent for the next conversation, or None when all are at their limit."""
        limit = self.settings.chat_limit
        free = [a for a in online if not limit or loads[a] < limit]
        if not free:
            return None
        if self.settings.mode == "least_busy":
            return min(free, key=lambda a: (loads[a], a))
        after = [a for a in free if self.last is not None and a > self.last]
        return (after or free)[0]

    async def assign(self, key: str) -> str | None:
        """Give conversation ``key`` to an agent if it is waiting with nobody and one is
        free; the agent, or None."""
        session = await self.api.store().get(key, channel=key.partition(":")[0],
                                             sender=key.partition(":")[2])
        if handoff_status(session) != "waiting" or session.state["handoff"].get("agent"):
            return None
        if self.settings.mode == "round_robin":
            self.last = await self.hub.last_assigned() or self.last
        agent = self.pick(await self.hub.everyone(), await self._loads())
        return None if agent is None else await self.assign_to(agent, key)

    async def came_online(self, agent: str) -> None:
        """Give an agent who came online the oldest waiting conversations, to the limit."""
        for session in await self.api.handed_off(["waiting"]):
            if session.state["handoff"].get("agent") is not None:
                continue
            loads = await self._loads()
            limit = self.settings.chat_limit
            if limit and loads[agent] >= limit:
                return
            await self.assign_to(agent, session.key)

    async def assign_to(self, agent: str, key: str) -> str | None:
        """``agent`` takes ``key`` (None when another won it first, or it is gone)."""
        try:
            await self.take(agent, key)
        except web.HTTPException as exc:
            if exc.status in (404, 409):
                return None
            raise
        self.last = agent
        await self.hub.assigned(agent)
        return agent
