"""Several workers on one Redis: turn order across workers, a killed worker, a Redis restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.build import train
from bot.definition.loader import load_bot
from bot.server.pipeline import PIPELINE
from bot.sessions.redis_store import RedisSessionStore
from tests.local_redis import LocalRedis, free_port

from ..conftest import BOT_YAML, REPO, MakeBot
from .production_support import LIGHT_BOT, client_for, redis_server, redis_sessions

__all__ = ["redis_server"]


def blocker_for(url: str, bot: str) -> RedisSessionStore:
    """A store on the bot's keys, used to hold a session's lock from the test."""
    return RedisSessionStore(url, prefix=f"supportbot:{bot}", ttl_seconds=600).open()


async def wait_for_ticket(store: RedisSessionStore, key: str, ticket: int) -> None:
    async with asyncio.timeout(30):
        while int(await store.client.hget(f"{store.prefix}:{{{key}}}:lock", "next") or 0) \
                < ticket:
            await asyncio.sleep(0.005)


async def user_texts(store: RedisSessionStore, key: str) -> list[str]:
    session = await store.get(key, channel="rest", sender=key.split(":", 1)[1])
    return [t["text"] for t in session.history if t["role"] == "user"]


async def test_interleaved_turns_on_two_apps_keep_arrival_order(
        make_bot: MakeBot, redis_server: LocalRedis) -> None:
    root = make_bot(LIGHT_BOT + redis_sessions(redis_server.url), files={})
    first, second = await client_for(root), await client_for(root)  # two runtimes, two stores
    blocker = blocker_for(redis_server.url, "light_bot")
    try:
        async with blocker.lock("rest:u1"):  # queue every turn behind the test's hold
            requests = []
            for n in range(10):
                client = (first, second)[n % 2]
                requests.append(asyncio.create_task(client.post(
                    "/webhooks/rest", json={"sender": "u1", "message": f"message {n}"})))
                await wait_for_ticket(blocker, "rest:u1", n + 2)
        responses = await asyncio.gather(*requests)
        assert [r.status for r in responses] == [200] * 10
        assert await user_texts(blocker, "rest:u1") == [f"message {n}" for n in range(10)]
    finally:
        await blocker.close()
        await first.close()
        await second.close()


class Worker:
    """One `bot serve` process on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", str(root), "--port", str(self.port),
             "--log-level", "warning"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"})

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read().decode()  # type: ignore[union-attr]
                                     if self.process.stderr else "worker exited")
            try:
                async with session.get(f"{self.url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
        raise AssertionError("worker did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def workers(make_bot: MakeBot, redis_server: LocalRedis) -> Iterator[list[Worker]]:
    root = make_bot(BOT_YAML + redis_sessions(redis_server.url, lease_s=1.0))
    train(load_bot(root), progress=False)
    started = [Worker(root), Worker(root)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


async def test_killed_worker_and_redis_restart_lose_nothing(
        workers: list[Worker], redis_server: LocalRedis) -> None:
    a, b = workers
    blocker = blocker_for(redis_server.url, "test_bot")
    questions = ["my card has not arrived", "how do I reset my PIN", "how long is a transfer",
                 "where is my card", "PIN reset please", "international transfer time",
                 "card still not delivered", "reset pin"]
    acknowledged: list[str] = []

    async def say(session: aiohttp.ClientSession, worker: Worker, text: str) -> None:
        async with session.post(f"{worker.url}/webhooks/rest",
                                json={"sender": "u1", "message": text}) as response:
            assert response.status == 200, await response.text()
            (reply,) = await response.json()
            assert reply["kind"] == "faq"
        acknowledged.append(text)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await asyncio.gather(a.ready(http), b.ready(http))
            for n, text in enumerate(questions[:4]):  # alternate workers, no stickiness
                await say(http, (a, b)[n % 2], text)

            async with blocker.lock("rest:u1"):
                doomed = asyncio.create_task(say(http, a, questions[4]))
                await wait_for_ticket(blocker, "rest:u1", 6)
                a.process.send_signal(signal.SIGKILL)  # dies holding a ticket, mid-turn
                a.process.wait()
                survivor = asyncio.create_task(say(http, b, questions[5]))
                await wait_for_ticket(blocker, "rest:u1", 7)
            await survivor
            with pytest.raises(aiohttp.ClientError):
                await doomed
            await say(http, b, questions[6])
            assert await user_texts(blocker, "rest:u1") == acknowledged

            redis_server.restart()  # append-only file: the sessions come back
            await say(http, b, questions[7])
            assert await user_texts(blocker, "rest:u1") == acknowledged
            assert len(acknowledged) == 7
    finally:
        await blocker.close()


async def test_finding_8_redis_outage_is_a_503_and_a_restart_under_load_loses_nothing(
        make_bot: MakeBot, redis_server: LocalRedis) -> None:
    no_limits = "security:\n  sender_rate_limit: null\n  ip_rate_limit: null\n"
    client = await client_for(make_bot(LIGHT_BOT + no_limits + redis_sessions(redis_server.url),
                                       files={}))
    users, per_user = 4, 12
    acknowledged: dict[str, list[str]] = {f"u{n}": [] for n in range(users)}
    refusals: list[tuple[int, str | None]] = []

    async def user(sender: str) -> None:
        for n in range(per_user):  # paced, so every user is still talking during the outage
            text = f"{sender} message {n}"
            while True:  # the same message again after a refusal, as a client would
                response = await client.post("/webhooks/rest",
                                             json={"sender": sender, "message": text})
                if response.status == 200:
                    acknowledged[sender].append(text)
                    break
                refusals.append((response.status, response.headers.get("Retry-After")))
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.25)

    async def outage() -> None:
        while sum(map(len, acknowledged.values())) < users * 2:
            await asyncio.sleep(0.01)
        assert redis_server.process is not None
        redis_server.stop()  # under load: turns are running on every user
        health = await client.get("/health")
        body = await health.json()
        assert health.status == 503 and "unreachable" in body["store"]
        assert body["status"] == "unavailable"
        refused = await client.post("/webhooks/rest", json={"sender": "probe", "message": "hi"})
        assert refused.status == 503 and refused.headers["Retry-After"] == "5"
        assert "temporarily unavailable" in (await refused.json())["error"]
        async with asyncio.timeout(60):  # the users hit the outage too before it ends
            while not refusals:
                await asyncio.sleep(0.05)
        redis_server.start()

    try:
        await asyncio.wait_for(asyncio.gather(outage(), *(user(u) for u in acknowledged)), 180)
        assert (await client.get("/health")).status == 200
        assert refusals and all(status == 503 and retry == "5" for status, retry in refusals)
        store = client.app[PIPELINE].store  # type: ignore[index]
        for sender, texts in acknowledged.items():
            assert len(texts) == per_user
            session = await store.get(f"rest:{sender}", channel="rest", sender=sender)
            said = [t["text"] for t in session.history if t["role"] == "user"]
            # nothing lost, in order; a message whose reply was lost with the connection
            # may have been saved before its retry (at least once)
            assert texts == list(dict.fromkeys(said)) and set(said) <= set(texts)
            assert said[-1] == texts[-1]
    finally:
        await client.close()
