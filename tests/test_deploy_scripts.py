"""The production bot.yaml, the deployment docs and the deployment scripts (the model
server's start script, deploy/verify.sh and its turn sender), checked without a container
engine."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.engines.choice import engine_for
from bot.definition.loader import load_bot
from tests.test_deploy_files import (
    DEPLOY,
    EXAMPLE,
    ROOT,
    TRAINED,
    _bot_commands,
    _bot_yaml_refs,
    _parses,
)

# ---- the production bot.yaml ---------------------------------------------------------------

def test_production_bot_yaml_keeps_what_was_trained_and_moves_state_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "acme_bank"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".bot"))
    shutil.copy(DEPLOY / "acme_bank.yaml", folder / "bot.yaml")
    for name, required in _bot_yaml_refs().items():
        if required:
            monkeypatch.setenv(name, "redis://redis:6379/0" if name == "REDIS_URL" else
                               "http://model:8000/v1" if name == "MODEL_SERVER_URL" else "x")
    production = load_bot(folder).config
    example = load_bot(EXAMPLE).config
    assert production.sessions.store == "redis" and engine_for(production.model).name == "server"
    assert production.model.server is not None and production.model.server.lora_id == 0
    assert production.security.session_secret and production.security.api_tokens
    assert "auth" not in production.channels["rest"]
    for name in TRAINED:
        assert getattr(production, name) == getattr(example, name), \
            f"deploy/acme_bank.yaml: {name} drifted from example_bots/acme_bank/bot.yaml"
    assert dataclasses.replace(production.model, server=None, engine=None) == \
        dataclasses.replace(example.model, engine=None)


# ---- docs ----------------------------------------------------------------------------------

def test_deployment_docs_name_real_files_and_commands() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    section = text[text.index("## Containers"):]
    for path in set(re.findall(r"\b(deploy/[\w./-]+\.(?:yaml|conf))", section)):
        assert (ROOT / path).is_file(), path
    for line in re.findall(r"^\s*(?:\$ )?(?:\.venv/bin/)?(bot [^\n#]+)", section, re.M):
        for argv in _bot_commands(line):
            _parses(argv)


def test_model_server_leaves_out_a_missing_adapter(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "llama-server"  # prints the arguments it was given
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    adapter = tmp_path / "adapter.gguf"
    argv = ["--model", "base.gguf", "--lora-init-without-apply", "--lora", str(adapter),
            "--port", "8000"]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(DEPLOY / "model_server.sh"), *argv],
                              capture_output=True, text=True, check=True,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin"})

    alone = run()
    assert alone.stdout.split() == ["--model", "base.gguf", "--lora-init-without-apply",
                                    "--port", "8000"]
    assert "serving the base model alone" in alone.stderr
    adapter.write_bytes(b"GGUF")
    assert run().stdout.split() == argv


def test_container_check_script_is_sound_and_ci_runs_it_only_when_asked() -> None:
    script = DEPLOY / "verify.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "set -euo pipefail" in text
    assert "-f deploy/compose.yaml" in text and "--wait" in text
    passage = re.search(r'cited\[:1\] == \["([\w-]+)"\]', text)
    assert passage is not None
    faq = "".join(p.read_text() for p in (EXAMPLE / "faq").iterdir()
                  if p.suffix in (".yaml", ".yml", ".csv", ".md"))  # not the PDF
    assert f"id: {passage.group(1)}" in faq
    # it writes exactly the keys benchmarks/results/deploy.json has
    written = re.search(r"results = (\{.*?\})\n", text, re.S)
    assert written is not None
    keys = set(re.findall(r'"(\w+)":', written.group(1)))
    assert keys == {"image_mb", "build_s", "turn_ok", "lost_turns_worker_kill",
                    "lost_turns_redis_restart", "turns_sent", "fresh_install_s"}
    results = ROOT / "benchmarks" / "results" / "deploy.json"
    if results.is_file():
        assert set(json.loads(results.read_text())) == keys
    # CI never starts the long container build unless asked
    ci = (ROOT / ".ci" / "run").read_text()
    runs = [line for line in ci.splitlines() if "deploy/verify.sh" in line
            and not line.lstrip().startswith("#")]
    assert runs == ['if [ "${CONTAINER_CHECK:-}" = 1 ]; then deploy/verify.sh; fi']
    assert "smoke.sh" not in ci and not (DEPLOY / "smoke.sh").exists()


def test_verify_turns_helper_parses_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("verify_turns", DEPLOY / "verify_turns.py")
    assert spec is not None and spec.loader is not None
    turns = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "verify_turns", turns)  # for its dataclass
    spec.loader.exec_module(turns)
    with pytest.raises(SystemExit, match="at most 20"):
        turns.main(["load", "--url", "http://127.0.0.1:9", "--token", "t", "--state", "s",
                    "--prefix", "p", "--turns", "21"])
