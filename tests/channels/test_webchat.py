from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from .support import Serve, assert_nothing_stored, bearer, user_texts, visitor

SHOP = "https://shop.example.com"
EVIL = "https://evil.example.net"
WEBCHAT = {"title": "Acme help", "greeting": "Hi from YAML", "color": "#0b7285",
           "position": "left", "allowed_origins": [SHOP]}


async def test_widget_script_and_config_are_served(serve: Serve) -> None:
    client = await serve({"webchat": WEBCHAT})
    script = await client.get("/webchat/widget.js", headers={"Origin": EVIL})  # public
    assert script.status == 200
    assert script.content_type in ("application/javascript", "text/javascript")
    assert "attachShadow" in await script.text()
    style = await client.get("/webchat/widget.css", headers={"Origin": EVIL})
    assert style.status == 200 and style.content_type == "text/css"
    assert (await client.get("/webchat/other.js")).status == 404
    page = await (await client.get("/")).text()  # the bot's page is the widget, full page
    assert '<script src="webchat/widget.js" data-mode="page"></script>' in page
    config = await client.get("/webhooks/webchat/config", headers={"Origin": SHOP})
    assert config.headers["Access-Control-Allow-Origin"] == SHOP
    assert await config.json() == {
        "title": "Acme help", "greeting": "Hi from YAML", "placeholder": "Type your question…",
        "greeting_identified": "Hi {name}! How can I help you today?",
        "color": "#0b7285", "text_color": "#ffffff", "position": "left", "streaming": True,
        "identities": False}


async def test_http_fallback_and_websocket_share_one_session(serve: Serve) -> None:
    client = await serve({"webchat": WEBCHAT})
    token, sender = await visitor(client, origin=SHOP)
    response = await client.post("/webhooks/webchat", headers=bearer(token, Origin=SHOP),
                                 json={"message": "reset my pin"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    (reply,) = await response.json()
    assert reply["citations"][0]["passage_id"] == "reset-pin"
    async with client.ws_connect(f"/webhooks/webchat/ws?token={token}",
                                 headers={"Origin": SHOP}) as ws:
        await ws.send_json({"type": "message", "message": "how long does a transfer take"})
        while (frame := await asyncio.wait_for(ws.receive_json(), 15))["type"] != "reply":
            assert frame["type"] in ("typing", "delta")
        assert frame["citations"][0]["passage_id"] == "transfer-time"
    assert await user_texts(client, f"webchat:{sender}") == \
        ["reset my pin", "how long does a transfer take"]


async def test_preflight_and_cross_origin_requests_follow_the_allowed_origins(
        serve: Serve) -> None:
    client = await serve({"rest": {"auth": "none"}, "webchat": WEBCHAT},
                         cors_origins=("https://partner.example.org",))
    for path in ("/webhooks/webchat", "/webhooks/rest"):
        for origin in (SHOP, "https://partner.example.org", "HTTPS://SHOP.EXAMPLE.COM"):
            preflight = await client.options(path, headers={
                "Origin": origin, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"})
            assert preflight.status == 204, (path, origin)
            assert preflight.headers["Access-Control-Allow-Origin"] == origin
            assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
            assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
            assert preflight.headers["Vary"] == "Origin"
        denied = await client.options(path, headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST"})
        assert denied.status == 403 and "Access-Control-Allow-Origin" not in denied.headers
        post = await client.post(path, headers={"Origin": EVIL},
                                 json={"sender": "evil", "message": "reset my pin"})
        assert post.status == 403
        assert f"origin {EVIL} is not allowed" in (await post.json())["error"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/webhooks/webchat/ws", headers={"Origin": EVIL})
    assert refused.value.status == 403
    await assert_nothing_stored(client, "webchat:evil", "rest:evil")
    # errors from an allowed origin are readable by the page (they carry the CORS header)
    anonymous = await client.post("/webhooks/webchat", headers={"Origin": SHOP},
                                  json={"message": "hi"})
    assert anonymous.status == 401 and anonymous.headers["Access-Control-Allow-Origin"] == SHOP
    token, _ = await visitor(client, origin=SHOP)
    bad = await client.post("/webhooks/webchat", headers=bearer(token, Origin=SHOP),
                            data=b"{oops")
    assert bad.status == 400 and bad.headers["Access-Control-Allow-Origin"] == SHOP
    # no Origin (server to server) and the bot's own pages are not cross-origin
    own = f"http://{client.server.host}:{client.server.port}"
    for headers in ({}, {"Origin": own}):
        response = await client.post("/webhooks/rest", headers=headers,
                                     json={"sender": "same", "message": "reset my pin"})
        assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_without_allowed_origins_every_cross_origin_call_is_refused(serve: Serve) -> None:
    client = await serve({"rest": {"auth": "none"}, "webchat": {}})
    response = await client.post("/webhooks/rest", headers={"Origin": SHOP},
                                 json={"sender": "x", "message": "hi"})
    assert response.status == 403
    wildcard = await serve({"webchat": {"allowed_origins": ["*"]}})
    token, _ = await visitor(wildcard, origin=EVIL)
    response = await wildcard.post("/webhooks/webchat", headers=bearer(token, Origin=EVIL),
                                   json={"message": "reset my pin"})
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == EVIL


async def test_webchat_push_reaches_the_open_widget(serve: Serve) -> None:
    from channels.registry import CHANNELS
    from foundation.messages import BotReply

    client = await serve({"webchat": WEBCHAT})
    channel: Any = client.app[CHANNELS]["webchat"]
    token, sender = await visitor(client)
    async with client.ws_connect(f"/webhooks/webchat/ws?token={token}") as ws:
        await ws.send_json({"type": "hello"})
        assert (await ws.receive_json())["type"] == "ready"
        await channel.push(sender, BotReply(text="A person will take over", handoff=True))
        frame = await asyncio.wait_for(ws.receive_json(), 5)
        assert frame["type"] == "reply" and frame["handoff"] is True
