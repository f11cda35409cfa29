"""An Apache Kafka broker (KRaft, combined broker and controller) on loopback, with a durable log directory.

The same broker production runs, pinned (`jars.KAFKA_VERSION`), on the Java runtime `java.find_java` picks and
the jars `jars.ensure_jars` checked. The log directory is formatted once and kept: a restart (or a SIGKILL)
keeps every acknowledged record. `prox local` and the tests start it; `python -m prox.broker start` runs one
for manual use.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

from ..common import processes
from ..common.broker import free_port, wait_for_port
from . import jars, java

HEAP = "-Xmx512m"
# Retention for local use: a day of data, segments small enough to be deleted soon after.
LOCAL_RETENTION_MS = 24 * 3600 * 1000
LOCAL_SEGMENT_BYTES = 64 * 1024 * 1024

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.ms={retention_ms}
log.segment.bytes={segment_bytes}
"""

LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


class KafkaBroker:
    """One KRaft node as a child process; `home` holds its configuration, log and data (kept between runs)."""

    def __init__(self, home: Path, port: Optional[int] = None, controller_port: Optional[int] = None,
                 host: str = "127.0.0.1", libs: Optional[Path] = None, heap: str = HEAP):
        self.home, self.host, self.heap = Path(home), host, heap
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.libs = libs
        self.process: Optional[subprocess.Popen] = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    def command(self, main_class: str, *args: str) -> list[str]:
        libs = jars.ensure_jars(self.libs)
        return [java.find_java().executable, self.heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j.configuration=file:{self._write('log4j.properties', LOG4J)}", "-cp", f"{libs}/*",
                main_class, *args]

    def _write(self, name: str, text: str) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / name
        path.write_text(text)
        return path

    def _properties(self) -> Path:
        return self._write("server.properties", SERVER_PROPERTIES.format(
            host=self.host, port=self.port, controller_port=self.controller_port, log_dir=self.log_dir,
            retention_ms=LOCAL_RETENTION_MS, segment_bytes=LOCAL_SEGMENT_BYTES))

    def format(self) -> None:
        """Format the log directory once; a formatted one (a restart) keeps its data."""
        properties = self._properties()
        if (self.log_dir / "meta.properties").exists():
            return
        subprocess.run(self.command("kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
                                    "-c", str(properties)), check=True, capture_output=True, timeout=120)

    def start(self, timeout_s: float = 120.0, detached: bool = False) -> "KafkaBroker":
        self.format()
        self.process = processes.spawn(self.command("kafka.Kafka", str(self.home / "server.properties")),
                                       {**os.environ}, self.log_path,
                                       on_parent_death=None if detached else signal.SIGKILL)
        (self.home / "broker.pid").write_text(str(self.process.pid))
        started = time.monotonic()
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"Apache Kafka did not start: {exc}\n{self.log_tail()}") from None
        self.started_in_s = round(time.monotonic() - started, 2)
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        """Controlled shutdown (SIGTERM): the broker flushes its logs; SIGKILL only past the timeout."""
        processes.stop(self.process, timeout_s)

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
