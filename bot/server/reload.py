"""Follow the served version: when ``bot train`` promotes one or ``bot rollback`` picks one
(``.bot/versions/current`` changes), load it beside the running one and switch new turns to
it; turns in flight finish on the old models, which stop a turn timeout later. A version
that fails to load is logged and the running one kept."""

from __future__ import annotations

import asyncio
import logging

from bot.definition.config import BotDefinition, served_version
from bot.definition.loader import load_bot
from bot.errors import BotError
from bot.runtime import BotRuntime
from bot.server.pipeline import TurnPipeline

log = logging.getLogger(__name__)

POLL_S = 2.0


class VersionFollower:
    """Polls ``versions/current`` and swaps the pipeline's models when it changes."""

    def __init__(self, bot: BotDefinition, pipeline: TurnPipeline, *,
                 poll_s: float | None = None) -> None:
        self.root = bot.root
        self.build_dir = bot.build_dir
        self.pipeline = pipeline
        self.poll_s = POLL_S if poll_s is None else poll_s
        self.grace_s = bot.config.server.turn_timeout_s
        self.seen = served_version(self.build_dir)
        self.retiring: list[BotRuntime] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            state = served_version(self.build_dir)
            if state != self.seen:
                self.seen = state
                await self.switch()

    async def switch(self) -> None:
        """Load the bot folder as it is now and answer new turns with it."""
        store = self.pipeline.store
        try:
            bot = await asyncio.to_thread(load_bot, self.root)
            runtime = await asyncio.to_thread(BotRuntime.load, bot, store=store)
        except BotError as exc:
            log.error("version %s not served, keeping the running one: %s", self.seen, exc)
            return
        old = self.pipeline.swap(runtime)
        log.info("serving version %s", bot.version)
        self.retiring.append(old)
        task = asyncio.create_task(self._retire(old))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _retire(self, runtime: BotRuntime) -> None:
        await asyncio.sleep(self.grace_s)  # turns in flight finish within the turn timeout
        self.retiring.remove(runtime)
        await runtime.close_models()

    async def close(self) -> None:
        """Stop every loaded model: the served one and those still retiring."""
        for task in list(self.tasks):
            task.cancel()
        for runtime in [*self.retiring, self.pipeline.runtime]:
            await runtime.close_models()
        self.retiring.clear()
