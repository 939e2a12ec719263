"""Build artefacts: the folders ``bot train`` fills, each with a manifest of what it was
built from, written atomically and checked for freshness before reuse.

One helper for every artefact: the FAQ index, the intent and sentiment classifiers, the
dialogue adapter and the de-quantised base-model cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (read in blocks: fine for model files)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def digest(value: Any) -> str:
    """SHA-256 of a JSON-serialisable value (keys sorted, so equal values digest equally)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place: a
    reader sees the old content or the new, never part of it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """A staging folder to fill; it replaces ``target`` when the block succeeds.

    A failure (or a crash) leaves the previous ``target`` as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        old = target.with_name(f".{target.name}-old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Artifact:
    """A build folder and the manifest that describes it.

    ``required``: files that must be present for the folder to count as complete; a tuple
    inside it means "any one of these".
    """

    folder: Path
    format: int
    required: tuple[str | tuple[str, ...], ...] = ()
    manifest_name: str = MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when missing, unreadable, another format or incomplete."""
        try:
            data = json.loads((self.folder / self.manifest_name).read_text())
        except (OSError, ValueError):
            return None
        if not (isinstance(data, dict) and data.get("format") == self.format):
            return None
        for need in self.required:
            options = (need,) if isinstance(need, str) else need
            if not any((self.folder / name).is_file() for name in options):
                return None
        return data

    def stale(self, wanted: Mapping[str, Any],
              manifest: Mapping[str, Any] | None = None) -> list[str]:
        """The keys of ``wanted`` the manifest disagrees with (all of them when it has none)."""
        found = self.manifest() if manifest is None else manifest
        if found is None:
            return list(wanted)
        return [key for key, value in wanted.items() if found.get(key) != value]

    def is_current(self, wanted: Mapping[str, Any]) -> bool:
        """Built, complete, and from exactly what ``wanted`` describes."""
        return not self.stale(wanted)

    @contextlib.contextmanager
    def write(self, manifest: Mapping[str, Any]) -> Iterator[Path]:
        """A staging folder to fill; on success the manifest is added and it replaces the
        folder atomically (a failure leaves the previous build as it was)."""
        with atomic_folder(self.folder) as staging:
            yield staging
            data = dict(manifest, format=self.format)
            (staging / self.manifest_name).write_text(json.dumps(data, indent=2, sort_keys=True))
