"""`bot engine build`: build llama.cpp's server, the default dialogue engine, for this CPU."""

from __future__ import annotations

import argparse
import time

from adapters.engine_build import build_llama_server, cached_binary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("engine", help="build the llama.cpp engine (llama-server)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build llama-server from PyPI sources (5-10 min)")
    build.add_argument("--force", action="store_true", help="rebuild even if a build is cached")
    build.add_argument("--jobs", type=int, default=None, help="parallel compile jobs")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    cached = not args.force and cached_binary().is_file()
    started = time.perf_counter()
    with tqdm(total=100, desc="llama-server", unit="%", disable=cached) as bar:
        def progress(percent: int, _line: str) -> None:
            if percent > bar.n:
                bar.update(percent - bar.n)

        path = build_llama_server(jobs=args.jobs, force=args.force, progress=progress)
    how = "copied from the build cache" if cached else "built"
    print(f"llama-server {how} in {time.perf_counter() - started:.0f} s: {path}")
    return 0
