"""The lead's pages in headless Chromium (selenium, chromium-driver), end to end: a
customer's answer is marked wrong in the review with the right entry; the mark becomes a
`bot suggest` suggestion and a question of the next `bot train`'s gate; the dashboard's
numbers equal the events table's; markup in customer text stays text."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.definition.loader import load_bot
from bot.learning import import_files
from bot.runtime import BotRuntime
from bot.server.app import create_app

from ..conftest import FAQ_YAML, MakeBot
from .browser import ServedApp, chromium, needs_chromium, wait_until
from .desk_support import ALICE_SECRET, BOB_SECRET
from .lead_support import numbers_from_events
from .test_desk_browser import PAYLOAD, by_css, sign_in
from .test_suggest import BOT_YAML, INTENTS, MISSED, history

pytestmark = needs_chromium
LEAD_BOT = BOT_YAML + """
channels:
  rest: {auth: none}
handoff:
  agents:
    Alice: ${DESK_ALICE}
    Bob: ${DESK_BOB}
  leads: [Alice]
"""


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def values(driver: Any, selector: str, what: str = "value") -> list[str]:
    """``what`` of each element ``selector`` finds, read in one go (the page replaces
    elements as it updates)."""
    return list(driver.execute_script(
        f"return [...document.querySelectorAll(arguments[0])].map(e => e.{what})", selector))


@pytest.fixture
def trained(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DESK_ALICE", ALICE_SECRET)
    monkeypatch.setenv("DESK_BOB", BOB_SECRET)
    root = make_bot(LEAD_BOT, files={"faq/main.yaml": FAQ_YAML, "intents.yaml": INTENTS})
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(c) + "\n" for c in history()), encoding="utf-8")
    import_files(root, [export])
    assert main(["train", str(root)]) == 0
    return root


def test_a_lead_marks_an_answer_wrong_and_the_next_train_counts_it(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bot = load_bot(trained)
    runtime = BotRuntime.load(bot)
    with ServedApp(create_app(bot, runtime=runtime)) as served:
        (reply,) = post(served.url + "/webhooks/rest", {"sender": "ann", "message": MISSED})
        assert [c["passage_id"] for c in reply["citations"]] == ["card-not-arrived"]
        post(served.url + "/webhooks/rest/feedback", {"sender": "ann", "rating": "down"})
        post(served.url + "/webhooks/rest", {"sender": "eve", "message": PAYLOAD})
        post(served.url + "/webhooks/rest", {"sender": "tom",
                                             "message": "do you sell car insurance?"})
        with chromium(tmp_path / "lead") as driver:
            sign_in(driver, served.url, "Alice", ALICE_SECRET)
            driver.get(served.url + "/desk/review")
            wait_until(driver, lambda d: len(by_css(d, "li.answer")) == 3)
            by_css(driver, 'input[name=show][value=down]')[0].click()
            by_css(driver, "#filters button[type=submit]")[0].click()
            wait_until(driver, lambda d: len(by_css(d, "li.answer")) == 1)
            item = by_css(driver, "li.answer")[0]
            assert MISSED in by_css(item, "[data-role=question]")[0].text
            by_css(item, "button[data-mark=wrong]")[0].click()
            search = wait_until(driver, lambda d: by_css(d, ".picker input"))[0]
            search.send_keys("PIN")
            wait_until(driver, lambda d: values(d, ".picker option") == ["reset-pin", "none"])
            by_css(driver, ".picker button")[0].click()
            wait_until(driver, lambda d: values(d, "[data-role=mark]", "textContent") ==
                       ["marked wrong → reset-pin by Alice"])
            by_css(driver, 'input[name=show][value=down]')[0].click()  # all answers again
            by_css(driver, "#filters button[type=submit]")[0].click()
            wait_until(driver, lambda d: len(by_css(d, "li.answer")) == 3)
            said = [e.text for e in by_css(driver, "[data-role=question]")]
            assert any(PAYLOAD in text for text in said)  # shown as text ...
            assert driver.execute_script("return window.__pwned") is None  # ... never run
            assert not by_css(driver, "li.answer img")
            driver.save_screenshot("/tmp/review.png")

            driver.get(served.url + "/desk/dashboard")
            shown = {e.get_attribute("data-figure"): json.loads(e.get_attribute("data-value"))
                     for e in by_css(driver, "[data-figure]")}
            gaps = [e.text for e in by_css(driver, "tr.gap")]
            driver.set_window_size(1280, 1300)  # the gaps too
            driver.save_screenshot("/tmp/dashboard.png")
        with chromium(tmp_path / "bob") as other:
            sign_in(other, served.url, "Bob", BOB_SECRET)
            other.get(served.url + "/desk/dashboard")
            assert "Bob is not a lead" in other.page_source
    since = time.time() - 29 * 86400 - 86400
    expected = numbers_from_events(bot.path(bot.config.sessions.path), since, time.time() + 1,
                                   bot.config.sessions.ttl_minutes * 60)
    assert {k: shown[k] for k in shown if k in expected} == \
        {k: expected[k] for k in shown if k in expected}
    assert (shown["conversations"], shown["marked_wrong"]) == (3, 1)
    assert any("car insurance" in gap for gap in gaps)

    capsys.readouterr()
    assert main(["suggest", str(trained)]) == 0
    suggestion = yaml.safe_load((trained / "suggestions" / "alt-reset-pin.yaml").read_text())
    assert MISSED in suggestion["entry"]["alternatives"]
    assert any(e.get("source") == "review mark" and "Alice" in e.get("mark", "")
               for e in suggestion["examples"])
    assert main(["suggest", str(trained), "--accept", "alt-reset-pin"]) == 0
    assert main(["train", str(trained)]) == 0
    assert "version 2 promoted" in capsys.readouterr().out
    gate = json.loads((trained / ".bot" / "versions" / "2" / "gate.json").read_text())
    marked = [a for name, a in gate["answers"].items() if name.startswith("mark-")]
    assert [(a["question"], a["outcome"]) for a in marked] == [(MISSED, "right")]
