"""The desk's door: the sign-in page, sign-out, the desk page, and the checks every desk
request passes (a sign-in; for a state-changing one, its CSRF token and a same-origin
``Origin``).

The cookie is HttpOnly, SameSite=Strict, limited to ``/desk`` (Secure over HTTPS). The desk
page carries the sign-in's CSRF token in a ``<meta>`` tag; ``desk.js`` sends it as
``X-CSRF-Token``. Pages get a strict Content-Security-Policy (scripts and styles from the
server only, no framing).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from bot.errors import Forbidden
from bot.server.desk.signins import SignedIn, SignIns
from bot.server.security import client_ip
from channels.cors import is_same_origin
from channels.http import unauthorized

STATIC = Path(__file__).parent.parent.parent / "static"
SIGN_INS: web.AppKey[SignIns] = web.AppKey("desk_sign_ins", SignIns)
LEADS: web.AppKey[frozenset[str]] = web.AppKey("desk_leads", frozenset)  # handoff.leads
DESK_TITLE: web.AppKey[str] = web.AppKey("desk_title", str)  # the bot's name, for the pages
COOKIE = "supportbot_desk"
CSRF_HEADER = "X-CSRF-Token"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff"}
MAX_FIELD_CHARS = 200


def escape(text: str) -> str:
    """``text`` safe inside HTML text and double-quoted attributes."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def page(name: str, values: dict[str, str], *, status: int = 200) -> web.Response:
    """``bot/static/<name>`` with each ``{{key}}`` replaced by its escaped value."""
    html = (STATIC / name).read_text(encoding="utf-8")
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", escape(value))
    return web.Response(text=html, content_type="text/html", status=status,
                        headers=PAGE_HEADERS)


async def signed_in(request: web.Request) -> SignedIn:
    """The request's sign-in; 401 without one."""
    found = await request.app[SIGN_INS].find(request.cookies.get(COOKIE))
    if found is None:
        raise unauthorized("sign in at /desk first (no desk session, or it has ended)")
    return found


def check_origin(request: web.Request) -> None:
    """403 when a browser says the request comes from another site."""
    origin = request.headers.get("Origin")
    if origin is not None and not is_same_origin(request, origin):
        raise Forbidden(f"desk requests must come from the desk's own page, not {origin!r}")


async def acting(request: web.Request) -> SignedIn:
    """The sign-in of a state-changing request: 401 without one, 403 without its CSRF
    token (or from another origin)."""
    signed = await signed_in(request)
    check_origin(request)
    if not signed.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header (reload the desk page)")
    return signed


def _sign_in_page(request: web.Request, error: str = "", *, status: int = 200,
                  name: str = "") -> web.Response:
    return page("desk-sign-in.html", {"error": error, "name": name,
                                      "title": request.app[DESK_TITLE]}, status=status)


async def sign_in_form(request: web.Request) -> web.Response:
    if await request.app[SIGN_INS].find(request.cookies.get(COOKIE)) is not None:
        raise web.HTTPSeeOther("/desk")
    return _sign_in_page(request)


async def sign_in(request: web.Request) -> web.Response:
    """Check the form's name and credential; 303 to the desk with the cookie set."""
    check_origin(request)
    sign_ins = request.app[SIGN_INS]
    if not sign_ins.configured:
        return _sign_in_page(request, "No agents are set up: add handoff.agents to bot.yaml "
                             "(a name and a ${ENV} credential each).", status=403)
    form = await request.post()
    name, credential = str(form.get("name", "")).strip(), str(form.get("credential", ""))
    if not name or not credential:
        return _sign_in_page(request, "Enter your name and your credential.", status=400,
                             name=name[:MAX_FIELD_CHARS])
    if len(name) > MAX_FIELD_CHARS or len(credential) > MAX_FIELD_CHARS:
        return _sign_in_page(request, f"Name and credential are at most {MAX_FIELD_CHARS} "
                             "characters.", status=400)
    who = (client_ip(request), name)
    wait = sign_ins.failures.wait_s(who)
    if wait > 0:
        response = _sign_in_page(request, "Too many failed sign-ins. Try again in "
                                 f"{int(wait) + 1} seconds.", status=429, name=name)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    agent = sign_ins.agent(name, credential)
    if agent is None:
        sign_ins.failures.add(who)
        return _sign_in_page(request, "Wrong name or credential.", status=401, name=name)
    sign_ins.failures.clear(who)
    cookie, _ = await sign_ins.open(agent)
    response = web.HTTPSeeOther("/desk")
    response.set_cookie(COOKIE, cookie, path="/desk", httponly=True, samesite="Strict",
                        secure=request.secure)
    raise response


async def desk_page(request: web.Request) -> web.Response:
    """The inbox for a signed-in agent; the sign-in page (303) for anyone else."""
    found = await request.app[SIGN_INS].find(request.cookies.get(COOKIE))
    if found is None:
        raise web.HTTPSeeOther("/desk/sign-in")
    lead = found.agent in request.app.get(LEADS, frozenset())
    return page("desk.html", {"agent": found.agent, "csrf": found.csrf,
                              "title": request.app[DESK_TITLE], "lead": "true" if lead else ""})


async def asset(request: web.Request) -> web.FileResponse:
    """``desk.js`` and ``desk.css`` (no sign-in needed: they hold no data)."""
    name = request.match_info["name"]
    if name not in ("desk.js", "desk.css"):
        raise web.HTTPNotFound(text=json.dumps({"error": f"no desk file {name!r}"}),
                               content_type="application/json")
    return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache",
                                                    "X-Content-Type-Options": "nosniff"})


ROUTES = [web.get("/desk", desk_page), web.get("/desk/sign-in", sign_in_form),
          web.post("/desk/sign-in", sign_in),
          web.get("/desk/static/{name}", asset)]
