"""llama.cpp's own HTTP server (``llama-server``), started and supervised as a child process.

One server holds one model: a bot's own (its adapter merged in), or a base model with any
number of LoRA adapters, loaded with scale 0 (``--lora-init-without-apply``) so each request
picks its adapter with the ``lora`` field.
It listens on loopback only, with ``model.max_batch`` parallel slots and continuous
batching, so several users' answers decode together (llama.cpp's batching, not ours).

Threads: llama.cpp spins while it waits for work; a second busy process on the same cores
then slows it down by an order of magnitude (benchmarks/README.md, "engine"). The default is
therefore one thread fewer than the cores this process may use (at least one), which leaves
a core for the bot's own embedder and classifiers, with llama.cpp's moderate polling.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import ModelError

log = logging.getLogger(__name__)

BINARY_ENV = "SUPPORTBOT_LLAMA_SERVER"
BINARY = "llama-server"
SLOT_TOKENS = 2048  # context per parallel slot (prompts are cut to fit it)
START_TIMEOUT_S = 120.0
LOG_TAIL_BYTES = 2000
# Grounded answers copy much of their passages: llama.cpp drafts the next tokens from n-grams
# already in the prompt and checks them in one batch (same greedy text; decoding ~1.5x faster
# on acme_bank, benchmarks/README.md "engine"). No draft model needed.
SPECULATIVE = ("--spec-type", "ngram-simple")
INSTALL_HINT = ("run `bot engine build` (builds llama.cpp's server from PyPI's "
                "llama-cpp-python source, about 5-10 minutes), set "
                f"{BINARY_ENV} to a llama-server binary, or set model.engine: transformers")


def find_binary() -> Path:
    """The ``llama-server`` to run: ``$SUPPORTBOT_LLAMA_SERVER``, this environment's, or PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ModelError(f"{BINARY_ENV}={configured}: not an executable file")
        return path
    local = Path(sys.prefix) / "bin" / BINARY
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(BINARY)
    if found is None:
        raise ModelError(f"llama.cpp's {BINARY} is not installed: {INSTALL_HINT}")
    return Path(found)


def default_threads() -> int:
    """One thread fewer than the usable cores, at least one (see the module docstring)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM when the bot process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class ServerOptions:
    """How the server runs: threads, parallel slots, polling level (0-100)."""

    threads: int
    parallel: int
    poll: int = 50


class LlamaServer:
    """A ``llama-server`` child process for ``model`` with ``loras`` (name -> GGUF file)."""

    def __init__(self, model: Path, loras: Sequence[tuple[str, Path]], options: ServerOptions,
                 *, binary: Path | None = None) -> None:
        self.model = model
        self.loras = list(loras)
        self.options = options
        self.binary = binary
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        """The OpenAI-compatible API base."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def lora_ids(self) -> dict[str, int]:
        """The server's adapter id of each adapter name."""
        return {name: n for n, (name, _path) in enumerate(self.loras)}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        options = self.options
        binary = self.binary or find_binary()
        command = [str(binary), "--model", str(self.model), "--host", "127.0.0.1",
                   "--port", str(self.port), "--threads", str(options.threads),
                   "--threads-batch", str(options.threads), "--poll", str(options.poll),
                   "--parallel", str(options.parallel),
                   "--ctx-size", str(SLOT_TOKENS * options.parallel), "--no-kv-unified",
                   "--no-webui", "--jinja", "--n-gpu-layers", "0", *SPECULATIVE]
        if self.loras:
            # adapters cannot apply to weights repacked for the CPU's kernels: no repacking
            # (a single bot's adapter is merged into its model instead: llama_model.py)
            command += ["--no-repack", "--lora-init-without-apply"]
            for _name, path in self.loras:
                command += ["--lora", str(path)]
        return command

    def start(self, timeout_s: float = START_TIMEOUT_S) -> LlamaServer:
        """Start the server and wait until its model is loaded; a failure names the cause."""
        if self.running:
            return self
        for path in [self.model, *(p for _n, p in self.loras)]:
            if not path.is_file():
                raise ModelError(f"model file not found: {path}")
        self.port = self.port or free_port()  # a restart keeps the port its clients know
        command = self.command()
        handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        self._log = Path(name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
        log.info("starting %s on port %d", command[0], self.port)
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        os.close(handle)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise ModelError(f"llama-server stopped while loading {self.model}: "
                                 f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health",
                                            timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise ModelError(f"llama-server did not load {self.model} within {timeout_s:g} s")

    def log_tail(self) -> str:
        """The end of the server's output (where its own error message is)."""
        if self._log is None or not self._log.exists():
            return "(no output)"
        data = self._log.read_bytes()[-LOG_TAIL_BYTES:]
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return " | ".join(lines[-6:]) or "(no output)"

    def ensure_running(self) -> None:
        """Restart the server if it died (supervision between answers)."""
        if self._process is not None and not self.running:
            log.warning("llama-server exited (%s); restarting it: %s",
                        self._process.returncode, self.log_tail())
            self._process = None
            self.start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
