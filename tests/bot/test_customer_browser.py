"""The customer's side in headless Chromium (selenium, chromium-driver): the bot's page is the
widget full page, with timestamps, thumbs, safe links, buttons that are answered once, its
history after a reload and "end chat"; an identified customer is greeted by name and known
to the desk, where assist suggests answers and the customer sees the agent typing; a forged
identity stays anonymous."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.server.app import RUNTIME, create_app
from bot.sessions.events import FEEDBACK_EVENT
from channels.registry import CHANNELS
from channels.signing import hmac_hex
from foundation.messages import BotReply

from ..conftest import FAQ_YAML, MakeBot
from .browser import ServedApp, chromium, needs_chromium, wait_until
from .desk_support import ALICE_SECRET, ASK_FOR_PERSON, DESK_BOT, make_desk_bot
from .dialogue_support import FakeAnalyzer, runtime_for
from .test_desk_browser import by_css, say, sign_in, widget, widget_messages

pytestmark = needs_chromium
SECRET = "shop-identity-secret-42"
FEES = """
- id: fees
  question: What are your fees?
  answer: >-
    See [our fee list](https://bank.example/fees) or https://bank.example/help.
    Not [this](javascript:alert(1)).
"""
BOT = DESK_BOT.replace("  webchat: {title: Acme help}\n",
                       "  webchat:\n    title: Acme help\n    identity_secret: ${DESK_IDENTITY}\n")
SHOP = "<!doctype html><html lang='en'><head><title>Shop</title></head><body><h1>Shop</h1>" \
    "<script src='/webchat/widget.js' data-user-id='cust-7' data-user-hash='{hash}' " \
    "data-user-name='Ann Lee' data-user-plan='gold'></script></body></html>"


@pytest.fixture
def served(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
           embedder: Any) -> Iterator[ServedApp]:
    monkeypatch.setenv("DESK_IDENTITY", SECRET)
    root = make_desk_bot(make_bot, monkeypatch, bot_yaml=BOT)
    (root / "faq" / "main.yaml").write_text(FAQ_YAML + FEES)
    runtime = runtime_for(root, embedder, FakeAnalyzer())
    app = create_app(runtime.bot, runtime=runtime)

    def shop(signature: str) -> Any:
        async def page(_: web.Request) -> web.Response:
            return web.Response(text=SHOP.replace("{hash}", signature), content_type="text/html")
        return page

    app.router.add_get("/shop", shop(hmac_hex(SECRET, b"cust-7")))
    app.router.add_get("/forged", shop(hmac_hex("not-the-secret-at-all", b"cust-7")))
    with ServedApp(app) as served:
        yield served


def ready(driver: Any) -> None:
    wait_until(driver, lambda d: d.execute_script(
        "const h = document.getElementById('supportbot-webchat');"
        "return h && h.dataset.transport === 'websocket' && h.dataset.ready === 'true'"))


def last_bot(driver: Any, part: str) -> Any:
    return wait_until(driver, lambda d: [m for m in by_css(widget(d), ".msg.bot")
                                         if part in m.text][-1:])[0]


def stored_events(served: ServedApp, kind: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = served.app[RUNTIME].store
        return [e["data"] async for e in store.iter_events() if e["kind"] == kind]
    return served.call(read())


def test_the_page_is_the_widget_with_thumbs_links_buttons_history_and_end_chat(
        served: ServedApp, tmp_path: Path) -> None:
    with chromium(tmp_path / "customer") as page:
        page.get(served.url + "/")
        ready(page)
        root = widget(page)
        assert not by_css(root, ".launcher") and by_css(root, "h1")[0].text == "Acme help"
        assert by_css(root, "#sb-panel")[0].is_displayed()  # open, full page, no launcher
        assert "Hi! How can I help you today?" in widget_messages(page)[0][1]
        say(page, "what are your fees?")
        answer = last_bot(page, "fee list")
        links = [(a.text, a.get_attribute("href")) for a in by_css(answer, ".text a")]
        assert links == [("our fee list", "https://bank.example/fees"),
                         ("https://bank.example/help", "https://bank.example/help")]
        assert "[this](javascript:alert(1))" in answer.text  # not a link: stays text
        assert by_css(answer, "time")[0].text.count(":") == 1  # HH:MM
        by_css(answer, ".thumbs [data-rating=up]")[0].click()
        wait_until(page, lambda _: by_css(answer, "[data-rating=up]")[0]
                   .get_attribute("aria-pressed") == "true")
        (rated,) = stored_events(served, FEEDBACK_EVENT)
        assert rated["rating"] == "up" and rated["citations"] == ["fees"]

        sender = page.execute_script(
            "return JSON.parse(localStorage.getItem(arguments[0])).sender",
            f"supportbot:{served.url}:session")
        channel: Any = served.app[CHANNELS]["webchat"]
        served.call(channel.push(sender, BotReply(text="Which card?", kind="response", buttons=(
            {"title": "Debit", "payload": "debit card"},
            {"title": "Credit", "payload": "credit card"}))))
        wait_until(page, lambda d: by_css(widget(d), ".buttons button"))
        by_css(widget(page), ".buttons button")[0].click()
        wait_until(page, lambda d: len([m for m in by_css(widget(d), ".msg.bot")]) >= 4)
        buttons = by_css(widget(page), ".buttons button")
        assert [b.get_attribute("aria-pressed") for b in buttons] == ["true", "false"]
        assert all(not b.is_enabled() for b in buttons)  # answered: not again
        assert any(c == "msg user" and "Debit" in t for c, t in widget_messages(page))
        page.save_screenshot("/tmp/page.png")

        page.refresh()  # the server's history comes back, thumbs state with it
        ready(page)
        answer = last_bot(page, "fee list")
        assert by_css(answer, "[data-rating=up]")[0].get_attribute("aria-pressed") == "true"
        texts = [t for _, t in widget_messages(page)]
        assert any("what are your fees?" in t for t in texts)

        by_css(widget(page), ".end")[0].click()
        by_css(widget(page), ".confirm .yes")[0].click()
        wait_until(page, lambda d: any("You ended the chat" in t for _, t in
                                       widget_messages(d)))
        assert len(widget_messages(page)) == 2  # the greeting and that line
        page.refresh()
        ready(page)
        wait_until(page, lambda d: len(widget_messages(d)) == 1)  # a fresh conversation


def test_an_identified_customer_and_an_agent_with_assist_and_typing(
        served: ServedApp, tmp_path: Path) -> None:
    with chromium(tmp_path / "customer") as customer, chromium(tmp_path / "agent") as agent:
        customer.get(served.url + "/forged")  # a forged identity: anonymous
        ready(customer)
        session = "return JSON.parse(localStorage.getItem(arguments[0]))"
        key = f"supportbot:{served.url}:session"
        assert customer.execute_script(session, key).get("user") is None
        assert "Hi! How can I help you today?" in widget_messages(customer)[0][1]

        customer.get(served.url + "/shop")
        ready(customer)
        assert customer.execute_script(session, key)["user"]["name"] == "Ann Lee"
        wait_until(customer, lambda d: "Hi Ann Lee! How can I help you today?" in
                   widget_messages(d)[0][1])
        by_css(widget(customer), ".launcher")[0].click()
        say(customer, ASK_FOR_PERSON)
        wait_until(customer, lambda d: by_css(widget(d), ".handoff")[0].is_displayed())
        say(customer, "<b>how long</b> does a bank transfer take?")

        sign_in(agent, served.url, "Alice", ALICE_SECRET)
        row = wait_until(agent, lambda d: by_css(d, "[data-queue=waiting] .row"))[0]
        assert "Ann Lee ✓" in row.text
        row.click()
        wait_until(agent, lambda d: by_css(d, "#open:not([hidden])"))
        user = by_css(agent, "#c-user")[0]
        assert "Verified customer" in user.text and "gold" in user.text
        by_css(agent, "#take")[0].click()
        wait_until(agent, lambda d: by_css(d, "[data-queue=mine] .row"))
        insert = wait_until(agent, lambda d: by_css(d, "#assist-list .insert"))[0]
        assert "How long does a bank transfer take?" in by_css(agent, "#assist-list")[0].text
        insert.click()
        box = by_css(agent, "#text")[0]
        assert box.get_attribute("value").startswith("Domestic transfers arrive the same day")
        box.send_keys(" Anything else?")  # typing: the customer is told
        wait_until(customer, lambda d: by_css(widget(d), ".status")[0].text ==
                   "Alice is typing…")
        customer.save_screenshot("/tmp/widget2.png")
        agent.save_screenshot("/tmp/desk2.png")
        by_css(agent, "#send")[0].click()
        wait_until(customer, lambda d: any("Anything else?" in t for c, t in
                                           widget_messages(d) if "agent" in c))
        assert not by_css(widget(customer), ".msg.user b")  # customer text stays text
