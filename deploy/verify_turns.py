"""Turns under load with a fault in the middle, then a count of acknowledged turns lost.

deploy/verify.sh runs it against the compose stack's proxy (only on this machine's loopback):

    python3 deploy/verify_turns.py load --url http://127.0.0.1:18080 --token T \\
        --prefix wk --state STATE.json --fault "docker kill supportbot-verify-bot-1"
    python3 deploy/verify_turns.py check --url ... --token T --state STATE.json

``load``: ``--users`` customers each send ``--turns`` REST turns, one every ``--interval``
seconds, each text unique; once ``--fault-after`` turns have been answered the ``--fault``
command runs, while the load goes on. A turn is acknowledged when its customer got a 200
reply. The acknowledged texts are written to ``--state``.

``check``: waits until the stack answers again, reads every customer's conversation through
the REST API (``GET /webhooks/webchat/history`` with the API token) and counts the
acknowledged turns that the history does not hold: those are lost. Exits 1 when any is.
Standard library only: it runs with the machine's python3, outside the image.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUESTION = "my card has not arrived"
MAX_TURNS = 20  # sessions.max_history: the history keeps this many turns a customer


@dataclass
class Tally:
    """What the customers saw, shared by their threads."""

    acked: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    answered_after_fault: int = 0
    fault_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self) -> int:
        with self.lock:
            return sum(len(texts) for texts in self.acked.values())


def _request(url: str, token: str, body: dict[str, Any] | None = None,
             timeout: float = 60.0) -> tuple[int, Any]:
    """``(status, JSON body)`` of a GET (``body`` None) or a JSON POST; status 0 when the
    request got no HTTP answer at all."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json",
                                                 "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _customer(args: argparse.Namespace, number: int, tally: Tally) -> None:
    sender = f"{args.prefix}-{number}"
    started = time.monotonic()
    for turn in range(args.turns):
        text = f"{QUESTION} (ref {args.prefix}{number}t{turn})"
        status, replies = _request(f"{args.url}/webhooks/rest", args.token,
                                   {"sender": sender, "message": text})
        ok = status == 200 and isinstance(replies, list) and bool(replies)
        with tally.lock:
            (tally.acked if ok else tally.failed).setdefault(sender, []).append(text)
            if ok and tally.fault_at is not None:
                tally.answered_after_fault += 1
        next_at = started + (turn + 1) * args.interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def load(args: argparse.Namespace) -> int:
    if args.turns > MAX_TURNS:
        raise SystemExit(f"--turns: at most {MAX_TURNS} (the history keeps that many)")
    tally = Tally()
    threads = [threading.Thread(target=_customer, args=(args, n, tally), daemon=True)
               for n in range(args.users)]
    for thread in threads:
        thread.start()
    fault_status = None
    if args.fault:
        deadline = time.monotonic() + args.turns * args.interval
        while tally.answered() < args.fault_after and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"fault after {tally.answered()} answered turns: {args.fault}", flush=True)
        with tally.lock:
            tally.fault_at = time.monotonic()
        fault_status = subprocess.run(shlex.split(args.fault), check=False,
                                      stdout=subprocess.DEVNULL).returncode
    for thread in threads:
        thread.join(timeout=args.turns * (args.interval + 65))
    sent = args.users * args.turns
    acked = sum(len(t) for t in tally.acked.values())
    summary = {"sent": sent, "acknowledged": acked, "failed": sent - acked,
               "answered_after_fault": tally.answered_after_fault,
               "fault": args.fault, "fault_exit": fault_status}
    Path(args.state).write_text(json.dumps({**summary, "acked": tally.acked}, indent=1))
    print(json.dumps(summary))
    if args.fault and fault_status != 0:
        print(f"error: the fault command failed (exit {fault_status})", file=sys.stderr)
        return 1
    if args.fault and tally.answered_after_fault == 0:
        print("error: no turn was answered after the fault: the stack did not recover",
              file=sys.stderr)
        return 1
    return 0


def _wait_until_answering(url: str, token: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _request(f"{url}/health", token, timeout=5)[0] == 200:
            return True
        time.sleep(2)
    return False


def check(args: argparse.Namespace) -> int:
    state = json.loads(Path(args.state).read_text())
    if not _wait_until_answering(args.url, args.token, args.wait):
        print(f"error: {args.url}/health did not answer 200 within {args.wait:.0f} s",
              file=sys.stderr)
        return 1
    lost: list[str] = []
    for sender, texts in state["acked"].items():
        query = urllib.parse.urlencode({"sender": sender})
        status, history = _request(f"{args.url}/webhooks/webchat/history?{query}", args.token)
        if status != 200 or not isinstance(history, dict):
            print(f"error: the history of {sender} could not be read (status {status})",
                  file=sys.stderr)
            return 1
        held = {m.get("text") for m in history.get("messages", []) if m.get("role") == "user"}
        lost += [text for text in texts if text not in held]
    acked = sum(len(texts) for texts in state["acked"].values())
    print(json.dumps({"acknowledged": acked, "lost": len(lost), "lost_texts": lost[:10]}))
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("load", "check"):
        command = sub.add_parser(name)
        command.add_argument("--url", required=True, help="the proxy, e.g. http://127.0.0.1:18080")
        command.add_argument("--token", required=True, help="one of security.api_tokens")
        command.add_argument("--state", required=True, help="the acknowledged turns (JSON)")
    loading = sub.choices["load"]
    loading.add_argument("--prefix", required=True, help="names this run's customers")
    loading.add_argument("--users", type=int, default=6)
    loading.add_argument("--turns", type=int, default=15, help="per customer")
    loading.add_argument("--interval", type=float, default=1.0, help="seconds between turns")
    loading.add_argument("--fault", default="", help="the command that makes the fault")
    loading.add_argument("--fault-after", type=int, default=20, help="answered turns before it")
    sub.choices["check"].add_argument("--wait", type=float, default=180.0,
                                      help="seconds to wait for /health")
    args = parser.parse_args(argv)
    return load(args) if args.command == "load" else check(args)


if __name__ == "__main__":
    sys.exit(main())
