"""Who may see the lead's pages: a desk sign-in (``bot/server/desk/access.py``) of an agent
named in ``handoff.leads``. Without a sign-in, pages redirect (303) to the sign-in page and
the APIs answer 401; a signed-in agent who is not a lead gets 403. Also the date range the
pages read (``?from=YYYY-MM-DD&to=YYYY-MM-DD``, UTC days, both included)."""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from bot.errors import BadRequest, Forbidden
from bot.server.desk.access import COOKIE, LEADS, SIGN_INS, STATIC, acting, escape, signed_in
from bot.server.desk.signins import SignedIn
from channels.boundary import query_value

DEFAULT_DAYS = 30
MAX_DAYS = 366
ASSETS = ("review.js", "lead.css")


def _check_lead(request: web.Request, signed: SignedIn) -> SignedIn:
    if signed.agent not in request.app[LEADS]:
        raise Forbidden(f"{signed.agent} is not a lead: the review and the dashboard are for "
                        "the agents named in handoff.leads")
    return signed


async def lead(request: web.Request) -> SignedIn:
    """A lead's sign-in: 401 without a sign-in, 403 for an agent who is not a lead."""
    return _check_lead(request, await signed_in(request))


async def lead_acting(request: web.Request) -> SignedIn:
    """A lead's state-changing request: also its CSRF token and same-origin check."""
    return _check_lead(request, await acting(request))


async def lead_page(request: web.Request) -> SignedIn:
    """A lead's sign-in for a page: 303 to the sign-in page without one, a 403 page for an
    agent who is not a lead."""
    found = await request.app[SIGN_INS].find(request.cookies.get(COOKIE))
    if found is None:
        raise web.HTTPSeeOther("/desk/sign-in")
    if found.agent not in request.app[LEADS]:
        raise web.HTTPForbidden(text=f"<!doctype html><title>Not a lead</title><p>"
                                f"{escape(found.agent)} is not a lead: ask for your name in "
                                "<code>handoff.leads</code>. <a href=\"/desk\">Back to the "
                                "desk</a></p>", content_type="text/html")
    return found


def _day(request: web.Request, name: str, default: dt.date) -> dt.date:
    value = query_value(request, name)
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"the query parameter {name!r} must be a date, YYYY-MM-DD "
                         f"(got {value[:40]!r})") from None


def date_range(request: web.Request) -> tuple[dt.date, dt.date, float, float]:
    """``?from`` and ``?to`` (default: the last 30 days up to today, UTC): the first and
    last day and the range as Unix times ``[since, until)``; 400 naming what is wrong."""
    today = dt.datetime.now(dt.UTC).date()
    last = _day(request, "to", today)
    first = _day(request, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise BadRequest(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days >= MAX_DAYS:
        raise BadRequest(f"the range is at most {MAX_DAYS} days")
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC).timestamp()
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return first, last, since, until.timestamp()


async def asset(request: web.Request) -> web.FileResponse:
    """The lead pages' script and style sheet (they hold no data)."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no lead page file {name!r}"}),
                               content_type="application/json")
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache",
                                                    "X-Content-Type-Options": "nosniff"})
