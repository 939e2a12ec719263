from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.definition.loader import load_bot
from bot.runtime import BotRuntime
from foundation.messages import UserMessage
from retrieval.knowledge import load_passages

from ..conftest import REPO, MakeBot
from .test_language import needs_e5


def test_init_validate_train_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new-bot"
    assert main(["init", str(target)]) == 0
    assert "name: new_bot" in (target / "bot.yaml").read_text()
    assert main(["validate", str(target)]) == 0
    assert "bot 'new_bot'" in capsys.readouterr().out
    assert main(["train", str(target)]) == 0
    assert "faq index: built (2 passages" in capsys.readouterr().out
    assert main(["train", str(target)]) == 0
    assert "faq index: up to date" in capsys.readouterr().out
    assert main(["init", str(target)]) == 2  # refuses a non-empty folder
    assert "not empty" in capsys.readouterr().err


def _with_handoff(bot_yaml: Path) -> None:
    """Uncomment the template's handoff section."""
    lines = bot_yaml.read_text(encoding="utf-8").splitlines()
    start = lines.index("# handoff:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("#   "))
    lines[start:end] = [line[2:] for line in lines[start:end]]
    bot_yaml.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("code", "greeting", "fallback", "handoff", "answer"), [
    ("en", "Hi, I'm Sam", "Sorry, I don't know", "I'm passing you to a member",
     "Our support team is available"),
    ("es", "Hola, soy Sam", "Lo siento, todavía no sé", "Te paso con una persona",
     "Nuestro equipo de atención al cliente"),
    ("zh", "你好，我是Sam", "抱歉，这个问题我暂时还不会回答", "正在为您转接",
     "我们的客服团队周一至周五"),
])
def test_init_writes_the_bot_in_the_language_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, greeting: str,
        fallback: str, handoff: str, answer: str) -> None:
    target = tmp_path / f"shop-{code}"
    assert main(["init", str(target), "--language", code]) == 0
    assert main(["validate", str(target)]) == 0
    _with_handoff(target / "bot.yaml")  # its messages are written, ready to switch on
    bot = load_bot(target)
    config = bot.config
    assert config.name == f"shop_{code}" and config.languages.code == code
    assert config.languages.detect == (code != "en")  # another language: identify each one
    assert config.embedder.model == ("all-MiniLM-L6-v2" if code == "en"
                                     else "multilingual-e5-small")
    assert config.persona.greeting.startswith(greeting)
    assert config.fallback.message.startswith(fallback)
    assert config.handoff is not None and config.handoff.message.startswith(handoff)
    assert config.faq is not None
    hours = load_passages(bot.faq_sources(), config.faq)[0]
    assert hours.id == "opening-hours" and hours.text.startswith(answer)
    capsys.readouterr()
    assert main(["init", str(tmp_path / "other"), "--language", "ja"]) == 2
    assert "bot init --language takes one of: de, en, es, fr, zh" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@needs_e5
async def test_a_spanish_bot_from_init_answers_and_falls_back_in_spanish(
        tmp_path: Path) -> None:
    target = tmp_path / "tienda"
    assert main(["init", str(target), "--language", "es"]) == 0
    assert await asyncio.to_thread(main, ["train", str(target)]) == 0
    runtime = BotRuntime.load(load_bot(target))
    try:
        known = await runtime.dialogue.handle(
            UserMessage("u1", "Olvidé mi contraseña y no puedo entrar, ¿qué hago?"))
        unknown = await runtime.dialogue.handle(
            UserMessage("u2", "¿Hacen envíos gratuitos a las islas Canarias?"))
    finally:
        await runtime.close()
    assert known.citations[0].passage_id == "reset-password"
    assert known.text.startswith("Haz clic en «He olvidado mi contraseña»")
    assert unknown.kind == "fallback" and unknown.text == \
        "Lo siento, todavía no sé responder a eso. ¿Puedes decirlo de otra manera?"


def test_validate_reports_file_key_and_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bot.yaml").write_text("name: x\nfaq:\n  sources: [a.yaml]\n  top_k: three\n")
    assert main(["validate", str(tmp_path)]) == 2
    assert re.search(r"bot\.yaml:4: faq\.top_k: must be an integer, got 'three'",
                     capsys.readouterr().err)


def test_a_new_bot_reads_every_faq_format_and_validate_names_files_nothing_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new-bot"
    assert main(["init", str(target)]) == 0
    (target / "faq" / "returns.md").write_text(
        "# Returns\n\nYou can return an item within 30 days of delivery.\n")
    (target / "faq" / "hours.csv").write_text(
        "question,answer\nWhen are you open?,Monday to Friday 9-17.\n")
    (target / "faq" / ".notes.txt").write_text("hidden: never read, never warned about")
    assert main(["validate", str(target)]) == 0
    out = capsys.readouterr().out
    assert "4 FAQ passages" in out and "warning" not in out  # the template's 2 + md + csv
    bot_yaml = target / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("sources: [faq/]", "sources: [faq/*.yaml]"))
    (target / "faq" / "notes.txt").write_text("not an FAQ format")
    assert main(["validate", str(target)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert [w.split(": ")[1].split(" is in")[0] for w in warnings] == [
        "new-bot/faq/hours.csv", "new-bot/faq/notes.txt", "new-bot/faq/returns.md"]


def test_faq_errors_name_the_file_as_the_user_would_type_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "bots" / "broken"
    assert main(["init", str(target)]) == 0
    (target / "faq" / "policies.yaml").write_text("- question: Q?\n  answer: A\n"
                                                  "- question: R?\n  answr: B\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "bots/broken"]) == 2
    assert "bots/broken/faq/policies.yaml:3: [1]: unknown key 'answr'" in \
        capsys.readouterr().err


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = (REPO / "README.md").read_text()
    assert f"\n{ci}\n" in readme
    assert "./scripts/install.sh && .venv/bin/bot train example_bots/acme_bank" in readme


def test_shell_chats_in_the_terminal(make_bot: MakeBot) -> None:
    root = make_bot()
    assert main(["train", str(root)]) == 0
    done = subprocess.run([sys.executable, "-m", "bot.cli", "shell", str(root)], cwd=REPO,
                          input="my card has not arrived\n\n/quit\n", capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.startswith("Type a message; /quit to leave.\nHello from Ava\n")
    assert "Ava> Cards arrive within 5-7 working days." in out
    assert "[source: My card has not arrived yet — test_bot/faq/main.yaml]" in out
    assert out.count("Ava>") == 1  # a blank line just prompts again


def test_serve_on_a_port_in_use_says_so_in_one_line(make_bot: MakeBot) -> None:
    import socket

    root = make_bot()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", str(root), "--port",
                               str(port)], capture_output=True, text=True, timeout=300,
                              cwd=REPO)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use: stop "
                                   "what is listening there or choose another with --port")
    assert "Traceback" not in done.stderr and "web chat on" not in done.stdout
