"""Build llama.cpp's ``llama-server`` from PyPI sources, once per machine.

The source is the llama.cpp that the ``llama-cpp-python`` sdist vendors (PyPI has it; pip's
cache keeps the download). Only the ``llama-server`` target is built, statically linked,
with this CPU's native instruction set (``GGML_NATIVE``, AMX left out: see ``NO_AMX``), no
web UI, no TLS, no downloads.
The binary is kept in ``~/.cache/supportbot/engine/<version>-<cpu key>/`` and copied into
this Python environment's ``bin/``, where adapters/engines/llama_server.py looks first; a second
install on the same machine copies it from there in a second. A ``portable`` build (for
container images that run on other machines) uses a common x86-64 instruction set (AVX2,
FMA, F16C) or the platform's baseline instead of this CPU's.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.engines.base_model import cache_root
from adapters.engines.llama_server import BINARY, BINARY_ENV
from adapters.errors import ModelError

LLAMA_CPP_PYTHON = "0.3.36"  # its sdist vendors the llama.cpp we build and test against
NATIVE = "-DGGML_NATIVE=ON"
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", NATIVE,
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)
PROGRESS = re.compile(r"^\[\s*(\d+)%\]")
TOOLS = ("cmake", "c++")
Progress = Callable[[int, str], None]


# llama.cpp's AMX kernels (this release) crash the server at its first matrix product on
# AMX CPUs (Sapphire Rapids and later: segmentation fault, measured; upstream issue 20824).
# Without them the CPU's other kernels serve, with weights repacked for AVX-512 / AVX2.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cmake_options(*, portable: bool = False) -> tuple[str, ...]:
    """The build's options: this CPU's instruction set (x86: without AMX), or a portable one."""
    options: tuple[str, ...] = CMAKE_OPTIONS
    if portable:
        options = tuple("-DGGML_NATIVE=OFF" if option == NATIVE else option
                        for option in options)
    if platform.machine().lower() in ("x86_64", "amd64"):
        options += (f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}")
    return options


def cpu_key(*, portable: bool = False) -> str:
    """What a build depends on: machine, CPU flags (unless portable), build options."""
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and not portable:
        flags = next((line for line in cpuinfo.read_text().splitlines()
                      if line.startswith(("flags", "Features"))), "")
    text = "|".join([platform.machine(), platform.system(), flags,
                     *cmake_options(portable=portable)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached_binary(*, portable: bool = False) -> Path:
    key = cpu_key(portable=portable)
    return cache_root().parent / "engine" / f"{LLAMA_CPP_PYTHON}-{key}" / BINARY


def missing_tools() -> list[str]:
    """The build tools that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def installed_binary() -> Path:
    return Path(sys.prefix) / "bin" / BINARY


def _run(command: list[str], cwd: Path, what: str, on_line: Callable[[str], None]) -> None:
    """Run a build step, feeding its output lines to ``on_line``; failure names the step."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        tail = [*tail[-19:], line.rstrip()]
        on_line(line)
    if process.wait() != 0:
        raise ModelError(f"building llama-server failed at {what} (exit {process.returncode}):"
                         "\n" + "\n".join(tail))


def _source(folder: Path, on_line: Callable[[str], None]) -> Path:
    """Download the sdist into ``folder`` and unpack its vendored llama.cpp."""
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
          "--dest", str(folder), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], folder,
         "download of the llama-cpp-python source", on_line)
    archive = next(folder.glob("llama_cpp_python-*.tar.gz"), None)
    if archive is None:
        raise ModelError(f"pip downloaded no llama-cpp-python {LLAMA_CPP_PYTHON} sdist")
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                   and (m.isfile() or m.isdir()) and ".." not in Path(m.name).parts]
        # the "data" filter where Python has it (3.11.4+; Debian 12's own Python is 3.11.2);
        # either way only plain files and folders under the prefix, none reaching out
        safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(folder, members=members, **safe)
    return folder / prefix


def build_llama_server(*, jobs: int | None = None, force: bool = False, portable: bool = False,
                       progress: Progress = lambda _percent, _line: None) -> Path:
    """Make ``llama-server`` available in this environment; returns its path.

    ``progress(percent, line)`` follows the compilation. A cached build for this CPU is
    reused unless ``force`` (no compiler needed then); a failed build leaves nothing behind.
    """
    cached = cached_binary(portable=portable)
    if force or not cached.is_file():
        missing = missing_tools()
        if missing:
            raise ModelError(
                f"building llama-server needs {' and '.join(missing)}: install them (e.g. "
                "apt-get install cmake g++, or on macOS xcode-select --install and brew "
                f"install cmake), set {BINARY_ENV} to a llama-server binary, or set "
                "model.engine: transformers in bot.yaml")
        jobs = jobs or os.cpu_count() or 1
        with tempfile.TemporaryDirectory(prefix="llama-build-") as temp:
            work = Path(temp)
            done = {"percent": 0}

            def on_line(line: str) -> None:
                match = PROGRESS.match(line)
                if match:
                    done["percent"] = int(match.group(1))
                progress(done["percent"], line.rstrip())

            source = _source(work, on_line)
            build = work / "build"
            _run(["cmake", "-S", str(source), "-B", str(build),
                  *cmake_options(portable=portable)], work,
                 "cmake configure", on_line)
            _run(["cmake", "--build", str(build), "--target", BINARY, "-j", str(jobs)],
                 work, "compilation", on_line)
            cached.parent.mkdir(parents=True, exist_ok=True)
            staging = cached.with_name(f".{BINARY}.tmp")
            shutil.copy2(build / "bin" / BINARY, staging)
            os.replace(staging, cached)
    target = installed_binary()
    staging = target.with_name(f".{BINARY}.tmp")
    shutil.copy2(cached, staging)
    os.replace(staging, target)
    return target
