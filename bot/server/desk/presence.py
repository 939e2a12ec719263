"""Who is online in the desk across the workers of one bot, kept in Redis (with the relay).

``<prefix>:desk:presence`` is a sorted set of ``<worker>\\n<agent>`` members scored by when
they lapse: each worker writes the agents whose desks it holds and renews them every
:data:`RENEW_S`, so the agents of a worker that died drop out within :data:`LAPSE_S`.
``<prefix>:desk:assigned`` is the agent that round-robin assignment chose last (any worker).
Every call goes through :meth:`DeskRelay.call`: None when Redis fails, never an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from bot.server.desk.relay import DeskRelay

RENEW_S = 10.0
LAPSE_S = 30.0


class SharedPresence:
    """This worker's agents in Redis, and everyone's."""

    def __init__(self, relay: DeskRelay) -> None:
        self.relay = relay
        self.key = f"{relay.prefix}:desk:presence"
        self.assigned_key = f"{relay.prefix}:desk:assigned"
        self._mine: set[str] = set()  # the members this worker wrote
        self._writing = asyncio.Lock()  # one write at a time: each knows what the last wrote

    def _member(self, agent: str) -> str:
        return f"{self.relay.origin}\n{agent}"

    async def write(self, agents: Iterable[str]) -> bool:
        """Make this worker's agents ``agents`` (renewing their lapse); False when Redis
        failed."""
        async with self._writing:
            return await self._write({self._member(a) for a in agents})

    async def _write(self, members: set[str]) -> bool:
        gone, now = self._mine - members, time.time()
        client = self.relay.client

        async def run() -> object:
            async with client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self.key, "-inf", now)
                if gone:
                    pipe.zrem(self.key, *gone)
                if members:
                    pipe.zadd(self.key, {m: now + LAPSE_S for m in members})
                pipe.expire(self.key, int(LAPSE_S * 2))
                return await pipe.execute()

        if await self.relay.call(run) is None:
            return False
        self._mine = members
        return True

    async def online(self) -> set[str] | None:
        """The agents online on any worker (None when Redis failed)."""
        now = time.time()
        found = await self.relay.call(lambda: self.relay.client.zrangebyscore(
            self.key, now, "+inf"))
        if found is None:
            return None
        return {(m.decode() if isinstance(m, bytes) else str(m)).partition("\n")[2]
                for m in found}

    async def last_assigned(self) -> str | None:
        """The agent round-robin assignment chose last, on any worker (None: unknown)."""
        found = await self.relay.call(lambda: self.relay.client.get(self.assigned_key))
        return found.decode() if isinstance(found, bytes) else None

    async def assigned(self, agent: str) -> None:
        await self.relay.call(lambda: self.relay.client.set(self.assigned_key, agent,
                                                            ex=7 * 24 * 3600))
