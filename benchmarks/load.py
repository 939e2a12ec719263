"""Load test a served bot on loopback: turns/s and p50/p99 latency per number of users.

Run (train the bot first: `.venv/bin/bot train example_bots/acme_bank`):
    .venv/bin/python benchmarks/load.py                      # FAQ path, SQLite and Redis
    .venv/bin/python benchmarks/load.py --path generation --stores sqlite --redis-workers 1 \
        --max-batch 1,8 --requests 32 --repeat 1 --timeout 300   # model answers, batched or not
    .venv/bin/python benchmarks/load.py --stores sqlite --redis-workers 1 \
        --baseline ../before --out benchmarks/results/load_stages.json  # vs other code

For each store it copies the trained bot into a temporary folder, points its ``sessions`` at
SQLite or at a throwaway loopback redis-server, switches rate limits off, starts
`bot serve` as a subprocess and sends ``--requests`` turns per concurrency level from
``--levels`` simulated users (each user waits for its reply before the next message, with its
own session; ``--redis-workers 2`` adds two workers on one Redis, each user's turns
alternating between them). Questions are the bot's held-out FAQ paraphrases. Results go to
``benchmarks/results/load.json``. The client runs on the same machine and shares its CPU.
On the generation path every turn is answered by the dialogue model: the bot's intents,
forms, actions and handoff rules and the exact-answer fast path are switched off; answers are
batched across users as ``model.max_batch`` allows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.local_redis import LocalRedis, free_port  # noqa: E402

WARMUP = 40


def questions(bot: Path) -> list[str]:
    """The bot's held-out paraphrases (or its FAQ-free fallback: a few fixed questions)."""
    eval_file = bot / "eval" / "faq_paraphrases.yaml"
    if not eval_file.is_file():
        return ["hello", "how do I reset my PIN?", "my card has not arrived"]
    items = yaml.safe_load(eval_file.read_text(encoding="utf-8"))
    return [q for item in items for q in item["questions"]]


def prepare(bot: Path, work: Path, *, store: str, path: str, redis_url: str,
            max_batch: int | None = None, engine: str | None = None,
            threads: int | None = None) -> Path:
    """A copy of the trained bot with the store, path, batch size, engine, threads and
    limits of this run."""
    target = work / (f"{bot.name}-{store}-{max_batch or 'default'}-{engine or 'default'}"
                     f"-{threads or 'default'}")
    shutil.copytree(bot, target, ignore=shutil.ignore_patterns("sessions.sqlite3*", "stats"))
    config_file = target / "bot.yaml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["sessions"] = {**(config.get("sessions") or {}), "store": store}
    if store == "redis":
        config["sessions"]["redis_url"] = redis_url
    config["security"] = {**(config.get("security") or {}), "sender_rate_limit": None,
                          "ip_rate_limit": None}
    config["model"] = {**(config.get("model") or {}), "generation": path == "generation"}
    if path == "generation":  # every turn to the dialogue model: no fast path, no intents
        config["model"]["exact_answer_threshold"] = 1.0
        for section in ("intents", "forms", "actions", "handoff"):
            config.pop(section, None)
        # the learned answer policy was trained with the intents: answer by the threshold
        config["answers"] = {**(config.get("answers") or {}), "policy": "threshold"}
    if max_batch is not None:
        config["model"]["max_batch"] = max_batch
    if engine is not None:
        config["model"]["engine"] = engine
    if threads is not None:
        config["model"]["threads"] = threads
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


async def wait_ready(http: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes],
                     timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bot serve exited with {process.returncode}")
        try:
            async with http.get(f"{url}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("bot serve did not start")


async def level(http: aiohttp.ClientSession, urls: list[str], *, users: int, total: int,
                texts: list[str], tag: str, seed: int) -> dict[str, Any]:
    """``total`` turns from ``users`` concurrent users; latency of each successful one.

    With several worker ``urls`` each user's turns rotate over the workers (no stickiness).
    """
    rng = random.Random(seed)
    plan = [rng.choice(texts) for _ in range(total)]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    kinds: dict[str, int] = {}

    async def user(n: int) -> None:
        turn = 0
        while plan:
            text = plan.pop()
            url = urls[(n + turn) % len(urls)]
            turn += 1
            started = time.perf_counter()
            try:
                async with http.post(f"{url}/webhooks/rest",
                                     json={"sender": f"{tag}-u{n}", "message": text}) as reply:
                    body = await reply.json()
                    if reply.status != 200:
                        errors[str(reply.status)] = errors.get(str(reply.status), 0) + 1
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
            kinds[body[0]["kind"]] = kinds.get(body[0]["kind"], 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(user(n) for n in range(users)))
    wall = time.perf_counter() - started
    ms = sorted(1000 * x for x in latencies)
    return {
        "users": users, "requests": total, "ok": len(ms), "errors": errors, "kinds": kinds,
        "seconds": round(wall, 2), "turns_per_s": round(len(ms) / wall, 1),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1) if ms else None,
    }


async def store_overhead(bot: Path, store: str, turns: int = 500) -> dict[str, Any]:
    """Session-store time of one turn in-process: lock, get, save, unlock, turn event."""
    from bot.definition.loader import load_bot
    from bot.sessions.events import TURN_EVENT
    from bot.sessions.factory import open_session_store

    sessions = open_session_store(load_bot(bot))
    ms: list[float] = []
    try:
        for n in range(turns):
            key = f"rest:overhead-{n % 50}"
            started = time.perf_counter()
            async with sessions.lock(key):
                session = await sessions.get(key, channel="rest", sender=key)
                session.add("user", "how do I reset my PIN?", max_history=20)
                session.add("bot", "Open the app, go to Card settings.", max_history=20)
                await sessions.save(session)
            await sessions.log_event(key, TURN_EVENT, {"kind": "faq"})
            ms.append(1000 * (time.perf_counter() - started))
    finally:
        await sessions.close()
    ms.sort()
    return {"store": store, "turns": turns, "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[int(0.99 * len(ms))], 2)}


class Served:
    """One `bot serve` subprocess of the prepared bot."""

    def __init__(self, served: Path, store: str, *, share: int = 1,
                 code: Path = ROOT) -> None:
        self.store = store
        threads = str(max(1, (os.cpu_count() or 1) // share))  # cores split among workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", str(served), "--port", str(self.port),
             "--log-level", "warning"], cwd=code, stdout=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def measure(series: dict[str, list[Served]], args: argparse.Namespace,
                  texts: list[str]) -> list[dict[str, Any]]:
    """Every level on every series, ``--repeat`` rounds; series alternate so drift hits all.

    A row holds the median of the rounds for each figure and every round's figures.
    """
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    limits = aiohttp.TCPConnector(limit=2 * max(args.levels) + 8)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=limits, timeout=timeout) as http:
        await asyncio.gather(*(wait_ready(http, s.url, s.process)
                               for servers in series.values() for s in servers))
        for servers in series.values():
            await level(http, [s.url for s in servers], users=4, total=WARMUP, texts=texts,
                        tag="warmup", seed=0)
        for repeat in range(args.repeat):
            for users in args.levels:
                for name, servers in series.items():
                    result = await level(http, [s.url for s in servers], users=users,
                                         total=args.requests, texts=texts,
                                         tag=f"{name}-{users}-{repeat}", seed=users + repeat)
                    rounds.setdefault((name, users), []).append(result)
                    print(f"round {repeat + 1} {name:>9} {users:>3} users: "
                          f"{result['turns_per_s']:>7} turns/s  p50 {result['p50_ms']} ms  "
                          f"p99 {result['p99_ms']} ms  errors {result['errors'] or 0}",
                          flush=True)
    rows = []
    for (name, users), runs in rounds.items():
        servers = series[name]
        median = {k: round(statistics.median(r[k] for r in runs if r[k] is not None), 1)
                  for k in ("turns_per_s", "p50_ms", "p99_ms")}
        rows.append({"series": name, "store": servers[0].store, "workers": len(servers),
                     "users": users, "requests": args.requests, **median,
                     "errors": sum(sum(r["errors"].values()) for r in runs), "rounds": runs})
    return rows


async def main(args: argparse.Namespace) -> dict[str, Any]:
    bot = args.bot.resolve()
    if not (bot / ".bot" / "faq_index" / "manifest.json").is_file():
        raise SystemExit(f"{bot} is not trained: run `bot train {args.bot}` first")
    texts = questions(bot)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="supportbot-load-") as tmp:
        work = Path(tmp)
        redis = LocalRedis(work / "redis").start() if "redis" in args.stores else None
        prepared = {store: prepare(bot, work, store=store, path=args.path,
                                   redis_url=redis.url if redis else "")
                    for store in args.stores}
        overhead = [await store_overhead(path, store) for store, path in prepared.items()]
        for row in overhead:
            print(f"{row['store']:>6} store only: p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
                  " per turn", flush=True)
        series = {store: [Served(path, store)] for store, path in prepared.items()
                  if not (args.max_batch and store == args.stores[0])}  # else: its -bN series
        for size in args.max_batch:  # the same store, other batch sizes, side by side
            store = args.stores[0]
            batched = prepare(bot, work, store=store, path=args.path, max_batch=size,
                              redis_url=redis.url if redis else "")
            series[f"{store}-b{size}"] = [Served(batched, store)]
        for engine in args.engines:  # the same store, other dialogue engines
            store = args.stores[0]
            other = prepare(bot, work, store=store, path=args.path, engine=engine,
                            max_batch=args.max_batch[-1] if args.max_batch else None,
                            redis_url=redis.url if redis else "")
            series[f"{store}-{engine}"] = [Served(other, store)]
        if args.baseline is not None:  # the same prepared bot, served by the other code
            store = args.stores[0]
            series[f"{store}-baseline"] = [Served(prepared[store], store,
                                                  code=args.baseline.resolve())]
        if "redis" in prepared and args.redis_workers > 1:
            series[f"redis-x{args.redis_workers}"] = [
                Served(prepared["redis"], "redis", share=args.redis_workers)
                for _ in range(args.redis_workers)]
        try:
            results = await measure(series, args, texts)
        finally:
            for served in (s for servers in series.values() for s in servers):
                served.stop()
            if redis is not None:
                redis.stop()
    return {
        "command": "python benchmarks/load.py " + " ".join(sys.argv[1:]),
        "bot": args.bot.name, "path": args.path, "requests_per_level": args.requests,
        "max_batch_series": args.max_batch,
        "rounds": args.repeat,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "note": "client and servers share the machine; each user has its own session; "
                "series alternate per level; with several workers a user's turns rotate "
                "over them",
        "store_overhead": overhead,
        "results": results,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bot", type=Path, default=ROOT / "example_bots" / "acme_bank")
    parser.add_argument("--path", choices=("faq", "generation"), default="faq")
    parser.add_argument("--stores", type=lambda s: s.split(","), default=["sqlite", "redis"])
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="turns per level")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of all levels; figures are medians over rounds")
    parser.add_argument("--redis-workers", type=int, default=2,
                        help="also measure this many `bot serve` workers sharing Redis")
    parser.add_argument("--max-batch", type=lambda s: [int(x) for x in s.split(",")],
                        default=[], help="also serve the first store with these "
                        "model.max_batch values (series <store>-b<N>), e.g. 1,8")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=[],
                        help="also serve the first store with these model.engine values "
                        "(series <store>-<engine>), e.g. transformers,llama.cpp")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per request")
    parser.add_argument("--baseline", type=Path, help="also serve the first store with the "
                        "code of this checkout (series <store>-baseline), e.g. a git "
                        "worktree of an earlier commit")
    parser.add_argument("--out", type=Path, help="default: results/load.json (FAQ path) or "
                        "results/load_generation.json")
    args = parser.parse_args(argv)
    if args.out is None:
        name = "load.json" if args.path == "faq" else f"load_{args.path}.json"
        args.out = ROOT / "benchmarks" / "results" / name
    return args


if __name__ == "__main__":
    arguments = parse()
    report = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {arguments.out}")
