"""The embeddable widget end to end in headless Chromium (selenium, Debian's chromium-driver):
a host page on another origin. (The bot's own page, which is the widget full page, is
tested in tests/bot/test_customer_browser.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from channels.registry import CHANNELS
from foundation.messages import BotReply

from ..bot.browser import chromium, needs_chromium, wait_until
from .support import Serve, serve_locally, user_texts

T = TypeVar("T")
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
        self.runner, self.origin = await serve_locally(app)
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


# Recorded in every document before its own scripts run: uncaught errors, rejected promises
# and console.error calls (what the page would show in its console as errors).
RECORD_ERRORS = """
window.__errors = [];
addEventListener('error', e => __errors.push(String(e.error || e.message)));
addEventListener('unhandledrejection', e => __errors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => { __errors.push(args.map(String).join(' ')); consoleError(...args); };
"""


class Page:
    """The browser tab, driven with selenium from a worker thread while the test's event loop
    serves the bot: JavaScript in the page, keys to the focused element, errors collected
    across navigations."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.errors: list[str] = []
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ERRORS})

    def evaluate(self, expression: str) -> Any:
        return self.driver.execute_script(f"return {expression}")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """``expression``'s value once it is truthy."""
        return wait_until(self.driver, lambda _: self.evaluate(expression), timeout)

    def _collect(self) -> None:
        self.errors.extend(self.evaluate("window.__errors || []"))

    def navigate(self, url: str) -> None:
        self._collect()
        self.driver.get(url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def reload(self) -> None:
        self._collect()
        self.driver.refresh()
        self.wait_for("document.readyState === 'complete'")

    def press(self, *keys: str) -> None:
        """Type ``keys`` (text, or selenium's ``Keys``) into the focused element."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def all_errors(self) -> list[str]:
        self._collect()
        return self.errors


def messages(page: Page) -> list[dict[str, Any]]:
    return list(page.evaluate(shadow(
        "[...R.querySelectorAll('.msg')].map(m => ({cls: m.className, "
        "text: m.querySelector('.text').textContent, "
        "sources: [...m.querySelectorAll('.sources li')].map(l => l.textContent)}))")))


def ask(page: Page, question: str, answer_part: str) -> dict[str, Any]:
    """Type ``question`` in the focused input, press Enter, wait for the answer bubble."""
    from selenium.webdriver.common.keys import Keys

    assert page.evaluate(shadow("R.activeElement && R.activeElement.id")) == "sb-input"
    page.press(question)
    page.press(Keys.ENTER)
    found = json.dumps(answer_part)
    page.wait_for(shadow(
        f"[...R.querySelectorAll('.msg.bot')].some(m => m.textContent.includes({found})) && "
        "R.querySelector('.log').getAttribute('aria-busy') !== 'true'"))
    return next(m for m in reversed(messages(page)) if answer_part in m["text"])


@needs_chromium
async def test_widget_on_another_origin_streams_answers_and_keeps_the_session(
        serve: Serve, sites: tuple[HostSite, HostSite], tmp_path: Path) -> None:
    allowed, other = sites
    client = await serve({"webchat": {"title": "Acme help", "greeting": "Hi from YAML",
                                      "color": "#0b7285", "allowed_origins": [allowed.origin]}})
    bot = f"http://127.0.0.1:{client.server.port}"
    allowed.pages["/"] = host_page(bot, "data-title='Shop support'")
    allowed.pages["/plain"] = host_page(bot, "data-streaming='false' data-color='#7c2d12'")
    other.pages["/"] = host_page(bot, "")
    loop = asyncio.get_running_loop()

    def on_loop(work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the test's loop (which serves the bot) from selenium's thread."""
        return asyncio.run_coroutine_threadsafe(work, loop).result(30)

    await asyncio.to_thread(browse, client, bot, allowed, other, tmp_path, on_loop)


def browse(client: Any, bot: str, allowed: HostSite, other: HostSite, tmp_path: Path,
           on_loop: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    """The customer's visit, in selenium's blocking calls."""
    from selenium.webdriver.common.keys import Keys

    with chromium(tmp_path / "profile") as driver:
        page = Page(driver)
        page.navigate(allowed.origin + "/")
        page.wait_for(f"{ROOT} && {ROOT}.host.dataset.transport === 'websocket'")
        # the title comes from data-title, the greeting and colour from the bot's YAML
        assert page.evaluate(shadow("R.getElementById('sb-title').textContent")) == \
            "Shop support"
        assert messages(page)[0]["text"] == "Hi from YAML"
        assert page.evaluate(shadow("getComputedStyle(R.querySelector('.launcher'))"
                                    ".backgroundColor")) == "rgb(11, 114, 133)"
        # keyboard: focus the launcher, Enter opens the dialog and focus moves to the input
        assert page.evaluate(shadow("R.getElementById('sb-panel').hidden"))
        page.evaluate(shadow("R.querySelector('.launcher').focus()"))
        page.press(Keys.ENTER)
        assert page.evaluate(shadow(
            "[R.querySelector('.launcher').getAttribute('aria-expanded'), "
            "R.getElementById('sb-panel').getAttribute('role'), "
            "R.getElementById('sb-panel').getAttribute('aria-labelledby'), "
            "R.querySelector('.log').getAttribute('role'), "
            "R.querySelector('.log').getAttribute('aria-live'), "
            "R.querySelector('label[for=sb-input]').textContent]")) == \
            ["true", "dialog", "sb-title", "log", "polite", "Your message"]
        answer = ask(page, Q1, "5-7 working days")
        assert answer["sources"] == ["My card has not arrived yet"]
        sender = page.evaluate(f"JSON.parse(localStorage.getItem("
                               f"'supportbot:{bot}:session')).sender")
        assert sender.startswith("v-")  # chosen by the server, inside the session token
        assert on_loop(user_texts(client, f"webchat:{sender}")) == [Q1]

        # a human agent's message arrives through push, with the handoff state
        channel: Any = client.app[CHANNELS]["webchat"]
        on_loop(channel.push(sender, BotReply(text="Let me find a colleague.", handoff=True)))
        page.wait_for(shadow("!R.querySelector('.handoff').hidden"))
        assert page.evaluate(shadow("R.querySelector('.handoff').textContent")) == \
            "You're being connected to a person"

        # reload: same sender, transcript and open panel restored; the session continues
        page.reload()
        page.wait_for(f"{ROOT} && {ROOT}.host.dataset.transport === 'websocket'")
        texts = [m["text"] for m in messages(page)]
        assert texts[:2] == ["Hi from YAML", Q1] and "5-7 working days" in texts[2]
        assert not page.evaluate(shadow("R.getElementById('sb-panel').hidden"))
        # the server's record decides the handoff state: this push handed nothing off
        page.wait_for(shadow("R.querySelector('.handoff').hidden"))
        page.evaluate(shadow("R.getElementById('sb-input').focus()"))
        ask(page, Q2, "Reset PIN")
        assert on_loop(user_texts(client, f"webchat:{sender}")) == [Q1, Q2]
        # Escape closes the dialog and gives focus back to the launcher
        page.press(Keys.ESCAPE)
        assert page.evaluate(shadow(
            "[R.getElementById('sb-panel').hidden, R.activeElement.className, "
            "R.querySelector('.launcher').getAttribute('aria-expanded')]")) == \
            [True, "launcher right", "false"]

        # without streaming the widget uses the HTTP fallback: same sender, same session
        page.navigate(allowed.origin + "/plain")
        page.wait_for(f"{ROOT} && {ROOT}.host.dataset.ready === 'true'")
        page.evaluate(shadow("R.querySelector('.launcher').click()"))
        assert page.evaluate(f"{ROOT}.host.dataset.transport") == "http"
        answer = ask(page, Q3, "Domestic transfers arrive the same day")
        assert answer["sources"] == ["How long does a bank transfer take?"]
        assert on_loop(user_texts(client, f"webchat:{sender}")) == [Q1, Q2, Q3]

        # a site that is not in allowed_origins cannot use the bot
        page.navigate(other.origin + "/")
        page.wait_for(f"{ROOT} && {ROOT}.host.dataset.ready === 'true'")
        page.wait_for(shadow("R.querySelector('.status').textContent.includes("
                             "\"isn't available on this website\")"))
        assert [e for e in page.all_errors() if "403" not in e and "CORS" not in e] == []
