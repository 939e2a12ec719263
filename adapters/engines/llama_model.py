"""The dialogue model on llama.cpp: the default engine (``model.engine: llama.cpp``).

``LlamaCppDialogueModel(settings)`` is cheap; ``load()`` prepares the engine's files and
starts a ``llama-server`` child process (adapters/engines/llama_server.py) with every added adapter,
on loopback. Answers go through the same client as a remote model server
(adapters/engines/remote_model.py), so prompts, streaming, citations and the shared
post-processing are exactly those of the other engines. The child is supervised: if it
dies, the next answer restarts it.

Files: the base model re-encoded once as ``model.gguf_type`` (adapters/engines/gguf_files.py) in
the model cache, keyed by the source file's fingerprint; each bot's peft adapter converted
to ``adapter.gguf`` and merged into its own copy of the base model, ``merged-<type>.gguf``,
inside its adapter folder (``bot train`` does both; a folder without them is converted on
load). The adapter's manifest ties it to the base fingerprint, so an adapter trained for
another base is refused, whatever the engine.

One adapter (a bot's server): the engine runs the merged model, with no LoRA at run time,
which decodes faster (benchmarks/README.md, "engine"). Several adapters (one model server
for several bots): the base model with every adapter, chosen per request.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from adapters.engines.adapter_store import check_adapter
from adapters.engines.answers import GeneratedAnswer, GenerationRequest
from adapters.engines.base_model import base_fingerprint, cache_root, resolve_base
from adapters.engines.gguf_files import export_base, export_lora, read_gguf, read_lora
from adapters.engines.llama_server import LlamaServer, ServerOptions, default_threads
from adapters.engines.remote_model import RemoteAnswerStream, RemoteDialogueModel
from adapters.errors import ModelError
from adapters.settings import ModelServerSettings, ModelSettings
from retrieval.artifacts import Artifact

ENGINE_FORMAT = 1
ADAPTER_GGUF = "adapter.gguf"
ANSWER_TIMEOUT_S = 120.0


def source_gguf(settings: ModelSettings) -> Path:
    """The base model's own GGUF file (e.g. the packaged Q4_1 file)."""
    source = resolve_base(settings.base)
    if source.gguf_file is None:
        raise ModelError(f"model.engine llama.cpp needs a GGUF base model; {settings.base!r} "
                         "is a Hugging Face model: set model.base to a .gguf file or "
                         "model.engine: transformers")
    return Path(source.location) / source.gguf_file


def engine_base_file(settings: ModelSettings) -> Path:
    """The base model as llama.cpp runs it (``model.gguf_type``), exported once."""
    gguf = source_gguf(settings)
    fingerprint = base_fingerprint(settings)
    key = fingerprint.removeprefix("sha256:")[:16]
    artifact = Artifact(cache_root() / "gguf" / f"{key}-{settings.gguf_type}", ENGINE_FORMAT,
                        required=("model.gguf",))
    if artifact.manifest() is None:
        try:
            with artifact.write({"source": str(gguf), "fingerprint": fingerprint,
                                 "type": settings.gguf_type}) as staging:
                export_base(gguf, staging / "model.gguf", settings.gguf_type)
        except OSError as exc:
            raise ModelError(f"cannot write {artifact.folder}: {exc}") from exc
    return artifact.folder / "model.gguf"


def _stale(target: Path, adapter: Path) -> bool:
    """Whether ``target`` must be (re)made from the peft adapter in ``adapter``: missing or
    older than its weights; an existing, current one is checked readable."""
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{adapter}: no adapter_model.safetensors to convert; "
                         "run `bot train --force`")
    if not target.is_file() or target.stat().st_mtime_ns < weights.stat().st_mtime_ns:
        return True
    read_gguf(target)  # a damaged file is named here, not as a server crash
    return False


def adapter_gguf(adapter: Path, base_file: Path) -> Path:
    """The GGUF LoRA of the peft adapter in ``adapter`` (converted when missing or older)."""
    target = adapter / ADAPTER_GGUF
    if _stale(target, adapter):
        export_lora(adapter, base_file, target)
    return target


def merged_gguf(settings: ModelSettings, adapter: Path) -> Path:
    """The base model with the adapter in ``adapter`` merged in, as ``model.gguf_type``
    (made from the base's own file when missing or older than the adapter)."""
    target = adapter / f"merged-{settings.gguf_type}.gguf"
    if _stale(target, adapter):
        source = source_gguf(settings)
        export_base(source, target, settings.gguf_type, read_lora(adapter, source))
    return target


class LlamaCppDialogueModel:
    """A base model plus named LoRA adapters on a llama.cpp server this object runs."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self._adapters: dict[str, Path] = {}  # name -> peft adapter folder
        self._server: LlamaServer | None = None
        self._client: RemoteDialogueModel | None = None
        self._base_file: Path | None = None
        self._lock = threading.Lock()

    @property
    def base_file(self) -> Path:
        if self._base_file is None:
            self._base_file = engine_base_file(self.settings)
        return self._base_file

    @property
    def adapters(self) -> dict[str, Path]:
        """Added adapters by name (their folders)."""
        return dict(self._adapters)

    def options(self) -> ServerOptions:
        threads = self.settings.threads or default_threads()
        if threads < 1:
            raise ModelError(f"model.threads must be at least 1, got {threads}")
        return ServerOptions(threads=threads, parallel=self.settings.max_batch)

    def load(self) -> LlamaCppDialogueModel:
        """Start the engine with the added adapters (idempotent, thread-safe)."""
        with self._lock:
            if self._server is None:
                self._start()
        return self

    def _start(self) -> None:
        merged = next(iter(self._adapters)) if len(self._adapters) == 1 else None
        if merged is not None:
            server = LlamaServer(merged_gguf(self.settings, self._adapters[merged]), [],
                                 self.options())
        else:
            loras = [(name, adapter_gguf(folder, self.base_file))
                     for name, folder in self._adapters.items()]
            server = LlamaServer(self.base_file, loras, self.options())
        server.start()
        self._server = server
        self._client = RemoteDialogueModel(
            self.settings, lora_ids=server.lora_ids, merged=merged,
            server=ModelServerSettings(url=server.url, model="base", timeout_s=ANSWER_TIMEOUT_S))

    def add_adapter(self, name: str, path: Path) -> None:
        """Add (or replace) the adapter at ``path`` as ``name``; checks its base model.

        A running engine restarts with the new set (llama.cpp loads adapters at start)."""
        check_adapter(path, base_name=self.settings.base,
                      base_fingerprint=base_fingerprint(self.settings))
        adapter_gguf(path, self.base_file)  # a broken adapter is named here, not at start
        with self._lock:
            self._adapters[name] = path
            if self._server is not None:
                self._server.stop()
                self._start()

    def _ready(self) -> RemoteDialogueModel:
        self.load()
        assert self._server is not None and self._client is not None
        with self._lock:
            self._server.ensure_running()
        return self._client

    def stream(self, request: GenerationRequest) -> RemoteAnswerStream:
        """Text deltas of the answer; ``.answer`` holds the full result once exhausted."""
        return self._ready().stream(request)

    async def agenerate(self, request: GenerationRequest) -> GeneratedAnswer:
        client = await asyncio.to_thread(self._ready)
        return await client.agenerate(request)

    def generate(self, request: GenerationRequest) -> GeneratedAnswer:
        """:meth:`agenerate` for synchronous code (not inside a running event loop)."""
        return self._ready().generate(request)

    def close(self) -> None:
        """Stop the engine (a later answer starts it again)."""
        with self._lock:
            if self._server is not None:
                self._server.stop()
            self._server, self._client = None, None
