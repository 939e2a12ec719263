"""The desk and the widget together in headless Chromium (selenium, chromium-driver): a
customer asks for a person, an agent signs in, takes the conversation and answers; two
agents race for one conversation; markup in customer text stays text."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.server.app import create_app

from ..conftest import MakeBot
from .browser import ServedApp, chromium, needs_chromium, wait_until
from .desk_support import ALICE_SECRET, ASK_FOR_PERSON, BOB_SECRET, make_desk_bot
from .dialogue_support import FakeAnalyzer, runtime_for

pytestmark = needs_chromium
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>hi</b>'
SCREENSHOTS = Path("/tmp")


@pytest.fixture
def served(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch,
           embedder: Any) -> Iterator[ServedApp]:
    runtime = runtime_for(make_desk_bot(make_bot, monkeypatch), embedder, FakeAnalyzer())
    with ServedApp(create_app(runtime.bot, runtime=runtime)) as served:
        yield served


def by_css(scope: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(scope.find_elements(By.CSS_SELECTOR, selector))


def widget(driver: Any) -> Any:
    """The widget's shadow root."""
    return by_css(driver, "#supportbot-webchat")[0].shadow_root


def open_widget(driver: Any, url: str) -> None:
    """The bot's page: the widget, full page and open."""
    driver.get(url + "/")
    wait_until(driver, lambda d: d.execute_script(
        "const h = document.getElementById('supportbot-webchat');"
        "return h && h.dataset.transport === 'websocket' && h.dataset.ready === 'true'"))


def say(driver: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = by_css(widget(driver), "#sb-input")[0]
    field.send_keys(text)
    field.send_keys(Keys.ENTER)


def widget_messages(driver: Any) -> list[tuple[str, str]]:
    """``(class, text)`` of each widget message, the agent's name label included."""
    return [tuple(m) for m in driver.execute_script(
        "return [...document.getElementById('supportbot-webchat').shadowRoot"
        ".querySelectorAll('.msg')].map(m => [m.className, [...m.querySelectorAll("
        "'.name, .text')].map(n => n.textContent).join('\\n')])")]


def sign_in(driver: Any, url: str, name: str, credential: str) -> None:
    driver.get(url + "/desk")
    wait_until(driver, lambda d: d.current_url.endswith("/desk/sign-in"))
    by_css(driver, "#name")[0].send_keys(name)
    field = by_css(driver, "#credential")[0]
    field.send_keys(credential)
    field.submit()
    wait_until(driver, lambda d: by_css(d, "#live[data-state=live]"))


def open_first(driver: Any, queue: str) -> None:
    row = wait_until(driver, lambda d: by_css(d, f"[data-queue={queue}] .row"))[0]
    row.click()
    wait_until(driver, lambda d: by_css(d, "#open:not([hidden])"))


def transcript(driver: Any) -> list[tuple[str, str]]:
    """``(class, text)`` of each transcript item, read at once (the desk re-renders it)."""
    return [tuple(i) for i in driver.execute_script(
        "return [...document.querySelectorAll('#transcript .item')].map("
        "i => [i.className, i.querySelector('.item-text').textContent])")]


def rest_say(url: str, sender: str, text: str) -> None:
    body = json.dumps({"sender": sender, "message": text}).encode()
    request = urllib.request.Request(url + "/webhooks/rest", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200


def test_a_customer_and_an_agent_talk_live(served: ServedApp, tmp_path: Path) -> None:
    with chromium(tmp_path / "customer") as customer, chromium(tmp_path / "agent") as agent:
        open_widget(customer, served.url)
        say(customer, ASK_FOR_PERSON)
        banner = by_css(widget(customer), ".handoff")[0]
        wait_until(customer, lambda _: banner.is_displayed())

        sign_in(agent, served.url, "Alice", ALICE_SECRET)
        open_first(agent, "waiting")
        assert ("item user", ASK_FOR_PERSON) in transcript(agent)
        by_css(agent, "#take")[0].click()
        wait_until(agent, lambda d: by_css(d, "[data-queue=mine] .row"))
        text = by_css(agent, "#text")[0]
        text.send_keys("Hi, I'm Alice. How can I help?")
        by_css(agent, "#send")[0].click()

        wait_until(customer, lambda d: any("agent" in c for c, _ in widget_messages(d)))
        shown = widget_messages(customer)
        assert ("msg event", "Alice joined the conversation.") in shown
        assert ("msg agent", "Alice\nHi, I'm Alice. How can I help?") in shown
        name = by_css(widget(customer), ".msg.agent .name")[0]
        assert name.text == "Alice"
        colours = [customer.execute_script(
            "return getComputedStyle(arguments[0]).backgroundColor", m)
            for m in by_css(widget(customer), ".msg.agent, .msg.bot")]
        assert len(set(colours)) == 2  # the agent's bubble is not styled as the bot's
        assert not banner.is_displayed()  # a person answered: no "being connected"

        say(customer, "thanks Alice")  # reaches the open desk over its socket
        wait_until(agent, lambda d: ("item user", "thanks Alice") in transcript(d))
        say(customer, PAYLOAD)
        wait_until(agent, lambda d: ("item user", PAYLOAD) in transcript(d))
        assert not by_css(agent, "#transcript img, #transcript script, #transcript b")
        assert by_css(agent, "[data-queue=mine] .last")[0].text == PAYLOAD
        assert agent.execute_script("return window.__pwned") is None
        assert customer.execute_script("return window.__pwned") is None
        assert not [t for _, t in widget_messages(customer) if "passed on to our team" in t]
        agent.save_screenshot(str(SCREENSHOTS / "desk.png"))
        customer.save_screenshot(str(SCREENSHOTS / "widget-agent.png"))

        by_css(agent, "#resolve")[0].click()
        wait_until(customer, lambda d: any("assistant again" in t for _, t in
                                           widget_messages(d)))
        assert ("msg event", "Alice left the conversation.") in widget_messages(customer)


def test_two_agents_race_for_one_conversation_and_one_wins(
        served: ServedApp, tmp_path: Path) -> None:
    rest_say(served.url, "zoe", ASK_FOR_PERSON)
    with chromium(tmp_path / "alice") as alice, chromium(tmp_path / "bob") as bob:
        desks = {"Alice": alice, "Bob": bob}
        for name, driver in desks.items():
            sign_in(driver, served.url, name, ALICE_SECRET if name == "Alice" else BOB_SECRET)
            open_first(driver, "waiting")
        start = threading.Barrier(2)

        def take(driver: Any) -> None:
            start.wait()
            driver.execute_script("document.getElementById('take').click()")

        clicks = [threading.Thread(target=take, args=(d,)) for d in desks.values()]
        for click in clicks:
            click.start()
        for click in clicks:
            click.join(20)
        told = "return document.getElementById('c-title').textContent"
        for driver in desks.values():
            wait_until(driver, lambda d: by_css(d, "[data-queue=mine] .row") or
                       "taken by" in d.execute_script(told))
        winners = [n for n, d in desks.items() if by_css(d, "[data-queue=mine] .row")]
        assert len(winners) == 1
        loser = desks["Bob" if winners == ["Alice"] else "Alice"]
        assert loser.execute_script(told) == f"This conversation was taken by {winners[0]}."
        wait_until(loser, lambda d: by_css(d, "[data-queue=others] .row"))
        assert not by_css(loser, "[data-queue=mine] .row")
