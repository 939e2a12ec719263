"""A small fake card-delivery backend: the target of Acme Bank's ``card_delivery_status`` action.

Run it beside the bot (``bot serve`` / ``bot test`` call it on port 8091)::

    python example_bots/acme_bank/backend.py --port 8091

``POST /cards/status`` with ``{"last4": "4821", "date_of_birth": "1990-04-12"}`` answers
``200 {"card": {...}}`` for a known card, ``404`` when no card matches, ``400`` for a bad
request. Two cards show failures: ``0000`` answers 503 and ``7777`` answers after 10 s (a
timeout). ``GET /health`` answers ``{"status": "ok"}``. Importable: :func:`create_app`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiohttp import web

CARDS: dict[tuple[str, str], dict[str, Any]] = {
    ("4821", "1990-04-12"): {"status": "delivered", "method": "standard",
                             "dispatched_on": "2024-05-02", "delivered_on": "2024-05-07"},
    ("1357", "1985-11-30"): {"status": "dispatched", "method": "express",
                             "dispatched_on": "2024-05-20", "expected_by": "2024-05-22",
                             "tracking_url": "https://track.example.com/acme/AX1357"},
    ("2468", "2001-02-03"): {"status": "printing", "method": "standard",
                             "expected_dispatch": "2024-05-24"},
    ("9753", "1978-07-21"): {"status": "returned", "method": "standard",
                             "dispatched_on": "2024-04-29", "returned_on": "2024-05-13"},
}
FAILING, SLOW = "0000", "7777"
SLOW_SECONDS = 10.0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def card_status(request: web.Request) -> web.Response:
    try:
        data = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "body must be JSON")
    if not isinstance(data, dict):
        return _error(400, "body must be a JSON object")
    last4, birth = data.get("last4"), data.get("date_of_birth")
    if not (isinstance(last4, str) and len(last4) == 4 and last4.isdigit()):
        return _error(400, "'last4' must be 4 digits")
    if not isinstance(birth, str):
        return _error(400, "'date_of_birth' must be an ISO date")
    if last4 == FAILING:
        return _error(503, "card system unavailable")
    if last4 == SLOW:
        await asyncio.sleep(SLOW_SECONDS)
    card = CARDS.get((last4, birth))
    if card is None:
        return _error(404, "no card matches these details")
    return web.json_response({"card": {"last4": last4, **card}})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.post("/cards/status", card_status), web.get("/health", health)])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Acme Bank's fake card-delivery backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    print(f"acme card backend on http://{args.host}:{args.port}/cards/status", flush=True)
    web.run_app(create_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
