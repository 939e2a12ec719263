from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

from ..conftest import REPO, MakeBot


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
