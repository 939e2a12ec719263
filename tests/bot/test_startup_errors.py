"""`bot serve` refuses to start on missing or corrupt artefacts, naming what is wrong."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.build import train
from bot.cli import main
from bot.definition.loader import load_bot
from tests.local_redis import free_port

from ..conftest import BOT_YAML, REPO, MakeBot
from .production_support import LIGHT_BOT, restore_logging

__all__ = ["restore_logging"]


def garbage(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY garbage \x00\xff" * 20)


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "index.faiss corrupt": (lambda d: garbage(d / "index.faiss"),
                            "faq_index/index.faiss: FAQ index file is damaged"),
    "passages.jsonl corrupt": (lambda d: garbage(d / "passages.jsonl"),
                               "faq_index/passages.jsonl: FAQ index file is damaged"),
    "owners.npy missing": (lambda d: (d / "owners.npy").unlink(), "owners.npy"),
    "manifest.json missing": (lambda d: (d / "manifest.json").unlink(), "run `bot train`"),
}


@pytest.fixture
def trained(make_bot: MakeBot) -> Path:
    root = make_bot()
    train(load_bot(root), progress=False)
    return root


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_index_fails_startup_naming_it(trained: Path, case: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    index_dir = trained / ".bot" / "faq_index"
    damage, message = CORRUPTIONS[case]
    damage(index_dir)
    assert main(["serve", str(trained), "--port", str(free_port())]) == 2
    error = capsys.readouterr().err
    assert "faq_index" in error and message in error


def test_bad_embedder_path_fails_startup_naming_it(make_bot: MakeBot, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    root = make_bot(BOT_YAML + f"embedder:\n  model: {missing}\n")
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", str(root), "--port",
                           str(free_port())], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert f"cannot load embedding model '{missing}'" in done.stderr


def test_unreachable_redis_fails_startup(make_bot: MakeBot,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    root = make_bot(LIGHT_BOT + f"sessions:\n  store: redis\n  redis_url: {url}\n", files={})
    assert main(["serve", str(root), "--port", str(free_port())]) == 2
    assert f"{url}: cannot reach the Redis session store" in capsys.readouterr().err
