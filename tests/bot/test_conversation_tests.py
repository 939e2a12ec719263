from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.cli import main

from ..conftest import BOT_YAML, REPO, MakeBot

HANDOFF = "handoff:\n  fallback_streak: 2\n  offer_after: 0\n"

PASSING = """
- name: faq with a citation, then a follow-up
  steps:
    - user: my card has not arrived
      kind: faq
      cites: card-not-arrived
      contains: [5-7 working days, "10 days"]
      not_contains: PIN
    - user: and if it never comes?
      cites: card-not-arrived
- name: two misunderstandings hand off
  steps:
    - user: blorp
      kind: [clarify, fallback]
      handoff: false
    - user: zzz qqq
      kind: handoff
      handoff: true
"""

FAILING = """
name: wrong expectations
steps:
  - user: how do I reset my PIN?
    kind: [intent, form]
    cites: card-not-arrived
    contains: Reset PIN
    slots: {pin: "1234"}
"""


def write_tests(root: Path, **files: str) -> None:
    (root / "tests").mkdir(exist_ok=True)
    for name, text in files.items():
        (root / "tests" / f"{name}.yaml").write_text(textwrap.dedent(text))


def test_passing_conversations_exit_0(make_bot: MakeBot,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(BOT_YAML + HANDOFF)
    write_tests(root, basics=PASSING)
    assert main(["test", str(root)]) == 0
    out = capsys.readouterr().out
    assert "PASS  basics.yaml: faq with a citation, then a follow-up" in out
    assert "2 of 2 conversations passed; 4 of 4 steps passed" in out


def test_failures_print_the_diff_and_exit_1(make_bot: MakeBot,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(BOT_YAML + HANDOFF)
    write_tests(root, basics=PASSING, wrong=FAILING)
    assert main(["test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  wrong.yaml: wrong expectations" in out
    assert "cites:\n          - expected 'card-not-arrived'\n          + got      ['reset-pin']" \
        in out
    assert "slot pin:\n          - expected '1234'\n          + got      None" in out
    assert "kind:\n          - expected ('intent', 'form')\n          + got      'faq'" in out
    assert "reply contains" not in out  # that expectation held
    assert "2 of 3 conversations passed; 4 of 5 steps passed" in out
    assert main(["test", str(root), "-k", "basics"]) == 0


def test_bad_test_files_name_the_file_and_key(make_bot: MakeBot,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot(BOT_YAML)
    write_tests(root, bad="- name: x\n  steps:\n    - user: hi\n      intnet: greeting\n")
    assert main(["test", str(root)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4: [0].steps[0].intnet: unknown key" in err


def test_acme_bank_conversations_pass(tmp_path: Path) -> None:
    """The shipped acme_bank suite against the real bot and the example card backend."""
    root = tmp_path / "acme_bank"
    shutil.copytree(REPO / "example_bots" / "acme_bank", root,
                    ignore=shutil.ignore_patterns(".bot"))
    assert "generation: false" in (root / "bot.yaml").read_text()  # quoting: no adapter
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    actions = (root / "actions.yaml").read_text().replace("127.0.0.1:8091", f"127.0.0.1:{port}")
    (root / "actions.yaml").write_text(actions)
    server = subprocess.Popen([sys.executable, str(root / "backend.py"), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and "acme card backend" in server.stdout.readline()
        env = {**os.environ, "AGENT_TOKEN": "t"}
        done = subprocess.run([sys.executable, "-m", "bot.cli", "test", str(root)], env=env,
                              capture_output=True, text=True, timeout=900, cwd=REPO)
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) of (\d+) conversations passed", done.stdout)
    assert passed is not None and passed[1] == passed[2] and int(passed[1]) >= 20
