"""The local stack: embedded broker, model server and the three services as supervised child processes.

A child service or model server that dies is restarted (its work is safe: offsets are committed only
after outputs are acknowledged). The broker is memory-only: if it dies, its data is gone, so that is fatal.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..common import processes
from ..common.broker import EmbeddedBroker, free_port
from .service import SERVICES

# The sink in a local run: shards appear within seconds, and each stop (SIGTERM) closes the open ones.
LOCAL_SINK_MAX_AGE_S = 5.0

log = logging.getLogger("prox.local")

class BrokerDied(RuntimeError):
    pass


class CrashLoop(RuntimeError):
    """A child keeps dying right after start: restarting it again cannot help (bad flags, missing model)."""


# A child that dies this soon after starting, this many times in a row, is crash-looping.
QUICK_EXIT_S = 15.0
MAX_QUICK_EXITS = 5


@dataclass
class ModelOptions:
    doc_backend: str = "heuristic"
    doc_model: Optional[str] = None
    chunk_backend: str = "heuristic"
    chunk_model: Optional[str] = None
    extra_args: list[str] = field(default_factory=list)


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: Optional[subprocess.Popen] = None
    restarts: int = 0
    quick_exits: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.process = processes.spawn(self.command, self.env, self.log_path)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def record_exit(self) -> None:
        """Count a quick failing exit; a clean stop (code 0, or SIGTERM from outside) is not a crash."""
        lived_s = time.monotonic() - self.started_at
        crashed = self.process.returncode not in (0, -signal.SIGTERM)
        self.quick_exits = self.quick_exits + 1 if crashed and lived_s < QUICK_EXIT_S else 0
        if self.quick_exits >= MAX_QUICK_EXITS:
            raise CrashLoop(f"{self.name} exited {self.quick_exits} times in a row within {QUICK_EXIT_S:.0f}s "
                            f"of starting (last code {self.process.returncode}); giving up. "
                            f"Last lines of {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 20.0) -> None:
        processes.stop(self.process, timeout_s)


def _prox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "prox.cli.main", *args]


class LocalStack:
    def __init__(self, workdir: Path, models: ModelOptions = ModelOptions(), partitions: int = 4,
                 service_env: Optional[dict[str, str]] = None, replicas: Optional[dict[str, int]] = None,
                 external_kafka: Optional[str] = None, shards: Optional[Path] = None):
        self.workdir = Path(workdir)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.models = models
        self.partitions = partitions
        self.service_env = service_env or {}
        self.replicas = replicas or {}
        # With an external (real) Kafka, no embedded broker runs and the idempotent producer stays on.
        self.external_kafka = external_kafka
        self.shards = shards  # where the sink writes; no sink without it
        self.broker = None if external_kafka else EmbeddedBroker(log_path=self.logs / "broker.log")
        self.triton_ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        self.children: dict[str, Child] = {}
        self.stopping = False

    # --- addresses --------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return self.external_kafka or self.broker.bootstrap_servers

    @property
    def triton_url(self) -> str:
        return f"127.0.0.1:{self.triton_ports['grpc']}"

    def service_port(self, name: str) -> int:
        return int(self.children[name].env["PROX_HTTP_PORT"])

    @property
    def metrics_urls(self) -> dict[str, str]:
        urls = {name: f"http://127.0.0.1:{self.service_port(name)}/metrics"
                for name in self.children if name != "model-server"}
        urls["triton"] = f"http://127.0.0.1:{self.triton_ports['metrics']}/metrics"
        return urls

    def kafka_settings(self):
        from ..common.config import KafkaSettings

        return KafkaSettings(bootstrap_servers=self.bootstrap_servers, idempotent=bool(self.external_kafka))

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> "LocalStack":
        from prox_proto.topics import Topics

        from ..common.kafka_io import create_topics

        if self.broker:
            self.broker.start()
        await create_topics(self.kafka_settings(), Topics().all(), self.partitions, 1)
        self._add_model_server()
        for name in SERVICES:
            if name == "sink" and self.shards is None:
                continue
            for replica in range(self.replicas.get(name, 1)):
                self._add_service(name, replica)
        for child in self.children.values():
            child.start()
        return self

    def _base_env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        return env

    def _add_model_server(self) -> None:
        m = self.models
        args = ["model-server", "--doc-backend", m.doc_backend, "--chunk-backend", m.chunk_backend,
                "--triton-http-port", str(self.triton_ports["http"]), "--triton-grpc-port", str(self.triton_ports["grpc"]),
                "--triton-metrics-port", str(self.triton_ports["metrics"]), *m.extra_args]
        if m.doc_model:
            args += ["--doc-model", m.doc_model]
        if m.chunk_model:
            args += ["--chunk-model", m.chunk_model]
        self.children["model-server"] = Child("model-server", _prox_command(*args), self._base_env(),
                                              self.logs / "model-server.log")

    def _add_service(self, name: str, replica: int) -> None:
        env = {
            **self._base_env(),
            "PROX_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "PROX_KAFKA_IDEMPOTENT": "true" if self.external_kafka else "false",  # Tansu rejects InitProducerId
            "PROX_TRITON_URL": self.triton_url,
            "PROX_HTTP_PORT": str(free_port()),
            **(self._sink_env() if name == "sink" else {}),
            **self.service_env,
        }
        key = name if replica == 0 else f"{name}-{replica}"
        self.children[key] = Child(key, _prox_command("service", name), env, self.logs / f"{key}.log")

    def supervises(self, child: Child) -> bool:
        """Whether `check()` restarts this child when it dies."""
        return not self.stopping

    def _sink_env(self) -> dict[str, str]:
        return {"PROX_SINK_PATH": str(self.shards), "PROX_SINK_MAX_AGE_S": str(LOCAL_SINK_MAX_AGE_S),
                "PROX_SINK_WRITER_ID": "local"}

    def check(self) -> list[str]:
        """Restart dead children; returns their names.

        Raises BrokerDied when the broker is gone and CrashLoop when a child keeps dying on start.
        """
        if self.broker and not self.broker.alive():
            raise BrokerDied(
                f"the embedded broker exited (code {self.broker.process.returncode}); it keeps data in memory "
                f"only, so this run cannot continue. Broker log: {self.logs / 'broker.log'}"
            )
        restarted = []
        for child in self.children.values():
            if self.supervises(child) and not child.alive():
                child.record_exit()
                child.restarts += 1
                log.warning("%s exited with code %s; restarting (restart #%d, log %s)", child.name,
                            child.process.returncode, child.restarts, child.log_path)
                child.start()
                restarted.append(child.name)
        return restarted

    async def wait_ready(self, timeout_s: float = 300.0) -> None:
        """Until Triton and every service answer ready (restarting children that die meanwhile)."""
        import aiohttp

        triton = f"http://127.0.0.1:{self.triton_ports['http']}"
        # PyTriton reports the server ready before its models are loaded: ask for each model too.
        urls = [f"{triton}/v2/health/ready", f"{triton}/v2/models/prox_doc/ready", f"{triton}/v2/models/prox_chunk/ready"]
        urls += [f"http://127.0.0.1:{self.service_port(n)}/readyz" for n in self.children if n != "model-server"]
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            pending = list(urls)
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout_s:.0f}s: {pending}; logs in {self.logs}")
                self.check()
                still = []
                for url in pending:
                    try:
                        async with session.get(url) as response:
                            if response.status != 200:
                                still.append(url)
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        still.append(url)
                pending = still
                if pending:
                    await asyncio.sleep(0.5)

    def stop(self) -> None:
        self.stopping = True
        services = [c for n, c in self.children.items() if n != "model-server"]
        for child in services:
            if child.alive():
                child.process.send_signal(signal.SIGTERM)
        for child in services:
            child.stop()
        if "model-server" in self.children:
            self.children["model-server"].stop()
        if self.broker:
            self.broker.stop()

    def ports(self) -> dict[str, object]:
        return {
            "kafka": self.bootstrap_servers,
            "triton": {"grpc": self.triton_ports["grpc"], "http": self.triton_ports["http"],
                       "metrics": self.triton_ports["metrics"]},
            "services": {n: self.service_port(n) for n in self.children if n != "model-server"},
            "logs": str(self.logs),
        }
