"""Versions of the trained artefacts: the gate, rollback, and `bot serve` following them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import bot.server.reload as reload_module
from bot.cli import main
from bot.definition.loader import load_bot
from bot.errors import BotError
from bot.runtime import BotRuntime
from bot.server.app import create_app
from bot.versions.store import list_versions, rollback
from tests.conftest import FAQ_YAML, MakeBot

ANSWERS = """
- {id: a1, turns: ["my card still hasn't come"], expect: [card-not-arrived]}
- {id: a2, turns: ["where is my new card?"], expect: [card-not-arrived]}
- {id: a3, turns: ["how long will a transfer take"], expect: [transfer-time]}
- {id: a4, turns: ["I forgot my PIN, how do I reset it?"], expect: [reset-pin]}
- {id: a5, turns: ["do you sell car insurance?"], expect: [none]}
- {id: a6, turns: ["how can I open an account with you?"], expect: [none]}
"""

TESTS = """
- name: the card question is answered from the FAQ
  steps:
    - user: my card has not arrived yet
      cites: card-not-arrived
- name: opening an account is not something the bot knows (until it learns it)
  steps:
    - user: how do I open an account?
      abstains: true
"""

# a deliberately worse FAQ: the card entry now answers something else
WORSE_FAQ = FAQ_YAML.replace(
    "question: My card has not arrived yet", "question: Can I change my postal address?"
).replace('alternatives: ["where is my card", "card still not delivered"]',
          'alternatives: ["update my address"]')

NEW_ENTRY = """
- id: open-account
  question: How do I open an account?
  answer: Download the app and sign up with your passport in ten minutes.
"""


@pytest.fixture
def versioned_bot(make_bot: MakeBot) -> Path:
    return make_bot(files={"faq/main.yaml": FAQ_YAML, "eval/answers.yaml": ANSWERS,
                           "tests/card.yaml": TESTS})


def served(root: Path) -> int | None:
    return load_bot(root).version


def test_first_training_is_version_one_and_an_unchanged_bot_is_up_to_date(
        versioned_bot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(versioned_bot)]) == 0
    assert "version 1 promoted: first version" in capsys.readouterr().out
    assert served(versioned_bot) == 1
    folder = versioned_bot / ".bot" / "versions" / "1"
    assert (folder / "faq_index").is_dir() and (folder / "source" / "faq" / "main.yaml").is_file()
    assert not (folder / "source" / "tests").exists()  # the yardstick is not a source
    assert main(["train", str(versioned_bot)]) == 0
    assert "version 1 is up to date" in capsys.readouterr().out
    assert [v.number for v in list_versions(load_bot(versioned_bot))] == [1]


def test_the_gate_refuses_a_worse_candidate_and_rollback_restores_the_previous_version(
        versioned_bot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq = versioned_bot / "faq" / "main.yaml"
    assert main(["train", str(versioned_bot)]) == 0
    faq.write_text(WORSE_FAQ)
    assert main(["train", str(versioned_bot)]) == 1
    out = capsys.readouterr().out
    assert "candidate refused: answers right" in out and "still serving version 1" in out
    assert served(versioned_bot) == 1
    refused = json.loads((versioned_bot / ".bot" / "candidate" / "version.json").read_text())
    assert refused["scores"]["right"] < list_versions(load_bot(versioned_bot))[0].scores.right

    assert main(["train", str(versioned_bot), "--no-gate"]) == 0
    assert served(versioned_bot) == 2
    version, restored = rollback(load_bot(versioned_bot))
    assert version.number == 1 and served(versioned_bot) == 1
    assert restored.written == ["faq/main.yaml"] and restored.removed == []
    assert faq.read_text() == FAQ_YAML
    backups = list((versioned_bot / ".bot" / "backups").rglob("main.yaml"))
    assert [b.read_text() for b in backups] == [WORSE_FAQ]  # nothing lost
    runtime = BotRuntime.load(load_bot(versioned_bot))  # the restored version loads as is
    assert runtime.knowledge is not None
    assert runtime.knowledge.search("my card has not arrived", 1)[0].passage.id \
        == "card-not-arrived"
    asyncio.run(runtime.close())


def test_a_question_answered_by_new_knowledge_is_not_counted_wrong(
        versioned_bot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The yardstick says nothing answered a6 when it was written; a new entry now does."""
    assert main(["train", str(versioned_bot)]) == 0
    (versioned_bot / "faq" / "main.yaml").write_text(FAQ_YAML + NEW_ENTRY)
    assert main(["train", str(versioned_bot)]) == 0
    candidate = list_versions(load_bot(versioned_bot))[-1].scores
    assert candidate is not None and candidate.wrong == 0.0


def test_a_better_candidate_is_promoted_and_listed(
        versioned_bot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(versioned_bot)]) == 0
    (versioned_bot / "faq" / "main.yaml").write_text(FAQ_YAML + NEW_ENTRY)
    assert main(["train", str(versioned_bot)]) == 0
    assert "version 2 promoted: not worse" in capsys.readouterr().out
    assert main(["versions", str(versioned_bot)]) == 0
    listing = capsys.readouterr().out
    assert "*   2" in listing and "faq index" in listing
    assert "2/2 tests pass" in listing  # the abstaining test predates the new entry


def test_a_served_version_this_release_cannot_run_is_replaced_without_comparison(
        versioned_bot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A version trained by an older release (its index built under other chunking rules)
    cannot be measured; the candidate is promoted, and says why."""
    assert main(["train", str(versioned_bot)]) == 0
    served_folder = versioned_bot / ".bot" / "versions" / "1"
    manifest = served_folder / "faq_index" / "manifest.json"
    older = json.loads(manifest.read_text())
    older["chunking"] = {"words": 120, "overlap": 30}  # as the release before rules 2
    manifest.write_text(json.dumps(older))
    info = json.loads((served_folder / "version.json").read_text())
    (served_folder / "version.json").write_text(json.dumps({**info, "scores": None}))
    (versioned_bot / "faq" / "main.yaml").write_text(FAQ_YAML + NEW_ENTRY)
    assert main(["train", str(versioned_bot)]) == 0
    out = capsys.readouterr().out
    assert "version 2 promoted: the served version 1 cannot run on this release" in out
    assert "FAQ index is out of date (chunking changed)" in out
    latest = list_versions(load_bot(versioned_bot))[-1]
    assert latest.number == 2 and latest.scores is not None
    assert latest.scores.tests_failed == () and latest.scores.wrong == 0.0


def test_rollback_names_what_is_missing(versioned_bot: Path) -> None:
    with pytest.raises(BotError, match="no versions yet"):
        rollback(load_bot(versioned_bot))
    assert main(["train", str(versioned_bot)]) == 0
    with pytest.raises(BotError, match="no earlier version"):
        rollback(load_bot(versioned_bot))
    with pytest.raises(BotError, match=r"no version 7 .*versions: 1"):
        rollback(load_bot(versioned_bot), 7)


async def test_serve_switches_to_a_promoted_version_without_dropping_turns(
        versioned_bot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reload_module, "POLL_S", 0.05)
    assert main(["train", str(versioned_bot)]) == 0
    bot = load_bot(versioned_bot)
    client = TestClient(TestServer(create_app(bot)))
    await client.start_server()
    try:
        async def ask(sender: str, text: str) -> dict[str, object]:
            response = await client.post("/webhooks/rest",
                                         json={"sender": sender, "message": text})
            assert response.status == 200
            (reply,) = await response.json()
            return reply  # type: ignore[no-any-return]

        before = await ask("u1", "How do I open an account?")
        assert not before["citations"]
        (versioned_bot / "faq" / "main.yaml").write_text(FAQ_YAML + NEW_ENTRY)
        asking = asyncio.gather(*(ask(f"busy{n}", "my card has not arrived yet")
                                  for n in range(6)))
        assert await asyncio.to_thread(main, ["train", str(versioned_bot)]) == 0
        for _ in range(200):
            health = await (await client.get("/health")).json()
            if health["version"] == 2:
                break
            await asyncio.sleep(0.05)
        assert health["version"] == 2
        assert all(r["citations"] for r in await asking)  # no turn dropped by the switch
        after = await ask("u1", "How do I open an account?")
        assert [c["passage_id"] for c in after["citations"]] == ["open-account"]
    finally:
        await client.close()
