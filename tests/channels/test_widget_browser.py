"""The embeddable widget end to end in headless Chromium: a host page on another origin.
(The bot's own page, which is the widget full page, is tested in
tests/bot/test_customer_browser.py.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from channels.registry import CHANNELS
from foundation.messages import BotReply

from .cdp import CHROMIUM, Page, chromium
from .support import Serve, user_texts

ROOT = "document.getElementById('supportbot-webchat')?.shadowRoot"
Q1, Q2, Q3 = "my card has not arrived", "how do I reset my PIN?", "how long does a transfer take"


class HostSite:
    """A website on its own loopback port (its own origin) serving the pages given."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def start(self) -> str:
        async def page(request: web.Request) -> web.Response:
            if request.path not in self.pages:
                raise web.HTTPNotFound()
            return web.Response(text=self.pages[request.path], content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"
        return self.origin


def host_page(bot: str, attributes: str) -> str:
    return (f"<!doctype html><html lang='en'><head><title>Shop</title></head><body>"
            f"<h1>Our shop</h1><script src='{bot}/webchat/widget.js' {attributes}></script>"
            f"</body></html>")


@pytest.fixture
async def sites() -> AsyncIterator[tuple[HostSite, HostSite]]:
    allowed, other = HostSite(), HostSite()
    await allowed.start()
    await other.start()
    yield allowed, other
    for site in (allowed, other):
        assert site.runner is not None
        await site.runner.cleanup()


def shadow(expression: str) -> str:
    """JavaScript evaluating ``expression`` with ``R`` = the widget's shadow root."""
    return f"(() => {{ const R = {ROOT}; return {expression}; }})()"


async def messages(page: Page) -> list[dict[str, Any]]:
    return list(await page.evaluate(shadow(
        "[...R.querySelectorAll('.msg')].map(m => ({cls: m.className, "
        "text: m.querySelector('.text').textContent, "
        "sources: [...m.querySelectorAll('.sources li')].map(l => l.textContent)}))")))


async def ask(page: Page, question: str, answer_part: str) -> dict[str, Any]:
    """Type ``question`` in the focused input, press Enter, wait for the answer bubble."""
    assert await page.evaluate(shadow("R.activeElement && R.activeElement.id")) == "sb-input"
    await page.type(question)
    await page.press("Enter")
    found = json.dumps(answer_part)
    await page.wait_for(shadow(
        f"[...R.querySelectorAll('.msg.bot')].some(m => m.textContent.includes({found})) && "
        "R.querySelector('.log').getAttribute('aria-busy') !== 'true'"))
    return next(m for m in reversed(await messages(page)) if answer_part in m["text"])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium chromium-driver)")
async def test_widget_on_another_origin_streams_answers_and_keeps_the_session(
        serve: Serve, sites: tuple[HostSite, HostSite], tmp_path: Path) -> None:
    allowed, other = sites
    client = await serve({"webchat": {"title": "Acme help", "greeting": "Hi from YAML",
                                      "color": "#0b7285", "allowed_origins": [allowed.origin]}})
    bot = f"http://127.0.0.1:{client.server.port}"
    allowed.pages["/"] = host_page(bot, "data-title='Shop support'")
    allowed.pages["/plain"] = host_page(bot, "data-streaming='false' data-color='#7c2d12'")
    other.pages["/"] = host_page(bot, "")

    async with chromium(tmp_path / "profile") as page:
        await page.navigate(allowed.origin + "/")
        await page.wait_for(f"{ROOT} && {ROOT}.host.dataset.transport === 'websocket'")
        # the title comes from data-title, the greeting and colour from the bot's YAML
        assert await page.evaluate(shadow("R.getElementById('sb-title').textContent")) == \
            "Shop support"
        assert (await messages(page))[0]["text"] == "Hi from YAML"
        assert await page.evaluate(shadow("getComputedStyle(R.querySelector('.launcher'))"
                                          ".backgroundColor")) == "rgb(11, 114, 133)"
        # keyboard: focus the launcher, Enter opens the dialog and focus moves to the input
        assert await page.evaluate(shadow("R.getElementById('sb-panel').hidden"))
        await page.evaluate(shadow("R.querySelector('.launcher').focus()"))
        await page.press("Enter")
        assert await page.evaluate(shadow(
            "[R.querySelector('.launcher').getAttribute('aria-expanded'), "
            "R.getElementById('sb-panel').getAttribute('role'), "
            "R.getElementById('sb-panel').getAttribute('aria-labelledby'), "
            "R.querySelector('.log').getAttribute('role'), "
            "R.querySelector('.log').getAttribute('aria-live'), "
            "R.querySelector('label[for=sb-input]').textContent]")) == \
            ["true", "dialog", "sb-title", "log", "polite", "Your message"]
        answer = await ask(page, Q1, "5-7 working days")
        assert answer["sources"] == ["My card has not arrived yet"]
        sender = await page.evaluate(f"JSON.parse(localStorage.getItem("
                                     f"'supportbot:{bot}:session')).sender")
        assert sender.startswith("v-")  # chosen by the server, inside the session token
        assert await user_texts(client, f"webchat:{sender}") == [Q1]

        # a human agent's message arrives through push, with the handoff state
        channel: Any = client.app[CHANNELS]["webchat"]
        await channel.push(sender, BotReply(text="Let me find a colleague.", handoff=True))
        await page.wait_for(shadow("!R.querySelector('.handoff').hidden"))
        assert await page.evaluate(shadow("R.querySelector('.handoff').textContent")) == \
            "You're being connected to a person"

        # reload: same sender, transcript and open panel restored; the session continues
        await page.reload()
        await page.wait_for(f"{ROOT} && {ROOT}.host.dataset.transport === 'websocket'")
        texts = [m["text"] for m in await messages(page)]
        assert texts[:2] == ["Hi from YAML", Q1] and "5-7 working days" in texts[2]
        assert not await page.evaluate(shadow("R.getElementById('sb-panel').hidden"))
        # the server's record decides the handoff state: this push handed nothing off
        await page.wait_for(shadow("R.querySelector('.handoff').hidden"))
        await page.evaluate(shadow("R.getElementById('sb-input').focus()"))
        await ask(page, Q2, "Reset PIN")
        assert await user_texts(client, f"webchat:{sender}") == [Q1, Q2]
        # Escape closes the dialog and gives focus back to the launcher
        await page.press("Escape")
        assert await page.evaluate(shadow(
            "[R.getElementById('sb-panel').hidden, R.activeElement.className, "
            "R.querySelector('.launcher').getAttribute('aria-expanded')]")) == \
            [True, "launcher right", "false"]

        # without streaming the widget uses the HTTP fallback: same sender, same session
        await page.navigate(allowed.origin + "/plain")
        await page.wait_for(f"{ROOT} && {ROOT}.host.dataset.ready === 'true'")
        await page.evaluate(shadow("R.querySelector('.launcher').click()"))
        assert await page.evaluate(f"{ROOT}.host.dataset.transport") == "http"
        answer = await ask(page, Q3, "Domestic transfers arrive the same day")
        assert answer["sources"] == ["How long does a bank transfer take?"]
        assert await user_texts(client, f"webchat:{sender}") == [Q1, Q2, Q3]

        # a site that is not in allowed_origins cannot use the bot
        await page.navigate(other.origin + "/")
        await page.wait_for(f"{ROOT} && {ROOT}.host.dataset.ready === 'true'")
        await page.wait_for(shadow("R.querySelector('.status').textContent.includes("
                                   "\"isn't available on this website\")"))
        assert [e for e in page.errors if "403" not in e and "CORS" not in e] == []
