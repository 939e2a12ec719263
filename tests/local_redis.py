"""A throwaway ``redis-server`` on a free loopback port, for tests, benchmarks and trials.

It runs in its own folder with append-only persistence (``appendfsync everysec`` like a
typical production Redis; a graceful stop flushes it), so :meth:`restart` keeps the data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from bot.errors import SessionError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalRedis:
    """Start, restart and stop one ``redis-server`` bound to 127.0.0.1."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 fsync: str = "everysec") -> None:
        self.directory = directory
        self.port = port or free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 10.0) -> LocalRedis:
        server = shutil.which("redis-server")
        if server is None:
            raise SessionError("redis-server is not installed (scripts/install.sh --dev)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", self.fsync,
             "--save", "", "--protected-mode", "yes", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SessionError(f"redis-server exited at start; see {self.directory}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise SessionError(f"redis-server did not answer on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: the append-only file is flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
