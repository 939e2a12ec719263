"""How fast the desk and the widget hear each other: customer -> agent and agent -> customer.

Run:
    .venv/bin/python benchmarks/desk.py            # -> benchmarks/results/desk.json

It writes a small FAQ bot with the webchat channel and one agent into a temporary folder,
trains it (`bot train`) and starts one `bot serve` worker (SQLite store) on loopback. Then
``--conversations`` customers each open the widget's WebSocket with their own session token
and ask for a person; the agent signs in at /desk, opens the desk's WebSocket and takes
every conversation, so that many stay open for the whole run. In each of ``--rounds``
rounds every customer, one at a time, says something and then the agent replies:

- customer_to_agent: from the customer's frame sent to the agent holding the text: the
  desk socket's ``changed`` frame for that conversation, then the desk's transcript fetch
  (what the desk page does);
- agent_to_customer: from the agent's reply POST sent to the customer's socket receiving
  the ``agent`` reply frame with that text.

Client and server share the machine; the load average is printed for the write-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.local_redis import free_port  # noqa: E402

AGENT, CREDENTIAL = "Alice", "benchmark-desk-credential"
BOT_YAML = """name: desk_benchmark
faq:
  sources: [faq.yaml]
channels:
  webchat: {}
security: {sender_rate_limit: null, ip_rate_limit: null}
handoff:
  agents:
    Alice: ${DESK_BENCHMARK_CREDENTIAL}
"""
FAQ_YAML = """- id: transfer-time
  question: How long does a bank transfer take?
  answer: Domestic transfers arrive the same day; international ones take 1-3 working days.
- id: reset-pin
  question: How do I reset my PIN?
  answer: Open the app, go to Card settings and choose Reset PIN.
"""


class Customer:
    """One widget visitor: its socket and the frames it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sender: str) -> None:
        self.ws = ws
        self.id = f"webchat:{sender}"
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            await self.frames.put(json.loads(message.data))

    async def until(self, wanted: Any) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), 30)
            if wanted(frame):
                return frame

    async def say(self, text: str) -> None:
        await self.ws.send_str(json.dumps({"type": "message", "message": text}))


async def customer(http: aiohttp.ClientSession, base: str) -> Customer:
    session = await (await http.post(f"{base}/webhooks/webchat/session")).json()
    ws = await http.ws_connect(f"{base.replace('http', 'ws')}/webhooks/webchat/ws"
                               f"?token={session['token']}")
    who = Customer(ws, session["sender"])
    await who.say("I want to talk to a person")
    await who.until(lambda f: f.get("type") == "reply" and f.get("handoff"))
    return who


async def signed_in_agent(base: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    response = await http.post(f"{base}/desk/sign-in", data={"name": AGENT,
                                                            "credential": CREDENTIAL})
    page = await response.text()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, page[:500]
    return http, found.group(1)


def percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {"p50": round(statistics.median(values), 1), "p99": round(cuts[98], 1)}


async def measure(base: str, conversations: int, rounds: int) -> dict[str, Any]:
    customers_http = aiohttp.ClientSession()
    agent_http, csrf = await signed_in_agent(base)
    headers = {"X-CSRF-Token": csrf}
    try:
        customers = [await customer(customers_http, base) for _ in range(conversations)]
        desk = await agent_http.ws_connect(f"{base.replace('http', 'ws')}/desk/socket")
        await desk.receive()  # hello
        for who in customers:
            response = await agent_http.post(f"{base}/desk/api/take", json={"id": who.id},
                                             headers=headers)
            assert response.status == 200, await response.text()
        queues = await (await agent_http.get(f"{base}/desk/api/queues")).json()
        assert len(queues["mine"]) == conversations, queues
        to_agent: list[float] = []
        to_customer: list[float] = []
        for round_number in range(rounds):
            for i, who in enumerate(customers):
                text = f"question {round_number}-{i}"
                started = time.perf_counter()
                await who.say(text)
                while True:  # the desk's frames for this conversation, then its transcript
                    frame = json.loads((await asyncio.wait_for(desk.receive(), 30)).data)
                    if frame.get("id") == who.id and frame.get("what") == "message":
                        break
                detail = await (await agent_http.get(
                    f"{base}/desk/api/conversation", params={"id": who.id})).json()
                assert any(t["text"] == text for t in detail["transcript"]), detail
                to_agent.append((time.perf_counter() - started) * 1000)

                answer = f"answer {round_number}-{i}"
                started = time.perf_counter()
                response = await agent_http.post(f"{base}/desk/api/reply", headers=headers,
                                                 json={"id": who.id, "text": answer})
                assert (await response.json())["delivered"] == "pushed"
                await who.until(lambda f, a=answer: f.get("kind") == "agent" and
                                f.get("text") == a)
                to_customer.append((time.perf_counter() - started) * 1000)
            while not desk.closed:  # the desk's own "reply" frames: drop them
                try:
                    await asyncio.wait_for(desk.receive(), 0.05)
                except TimeoutError:
                    break
        return {"customer_to_agent_ms": percentiles(to_agent),
                "agent_to_customer_ms": percentiles(to_customer),
                "open_conversations": len(queues["mine"])}
    finally:
        await customers_http.close()
        await agent_http.close()


async def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"bot serve exited with {server.returncode}")
            try:
                if (await http.get(f"{base}/health")).status == 200:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("bot serve did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/desk.json")
    args = parser.parse_args()
    bot_cli = str(Path(sys.executable).with_name("bot"))
    env = {**os.environ, "DESK_BENCHMARK_CREDENTIAL": CREDENTIAL}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "desk_benchmark"
        folder.mkdir()
        (folder / "bot.yaml").write_text(BOT_YAML)
        (folder / "faq.yaml").write_text(FAQ_YAML)
        subprocess.run([bot_cli, "train", str(folder)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([bot_cli, "serve", str(folder), "--host", "127.0.0.1",
                                   "--port", str(port), "--log-level", "warning"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_healthy(base, server))
            result = asyncio.run(measure(base, args.conversations, args.rounds))
        finally:
            server.terminate()
            server.wait(30)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
