"""Request helpers shared by HTTP channels."""

from __future__ import annotations

import json

from aiohttp import web

from bot.errors import BadRequest


async def read_json(request: web.Request) -> dict[str, object]:
    """The request body as a JSON object, or :class:`BadRequest` saying what is wrong."""
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest("request body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") \
            from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data
