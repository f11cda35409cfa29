"""A real Apache Kafka broker (KRaft, combined broker + controller) on 127.0.0.1, from Maven Central jars.

`make kafka-jars` resolves the pinned broker (deploy/kafka/pom.xml) into `.kafka/libs`; this module formats
a durable log directory and runs the broker with the machine's `java`. The real-Kafka test tier starts its
own broker here (so it can restart it); `make kafka` starts one for manual use:

    python -m tests.helpers.apache_kafka start|stop|status [--home .kafka/broker] [--port 9092]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional

from prox.common import processes
from prox.common.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LIBS = ROOT / ".kafka" / "libs"
HEAP = "-Xmx768m"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
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
"""


def java_tool(main_class: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
    """A command running one of Kafka's own Java tools (console producer/consumer, DumpLogSegments)."""
    return ["java", heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", f"{LIBS}/*", main_class, *args]


def console_produce(bootstrap: str, topic: str, lines: list[str], codec: str, key_separator: Optional[str] = None,
                    timeout_s: float = 120) -> None:
    """Send `lines` with Kafka's own Java console producer, batches compressed with `codec`; with
    `key_separator`, each line is KEY<separator>VALUE."""
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--compression-codec", codec,
            "--producer-property", "acks=all", "--producer-property", "linger.ms=20"]
    if key_separator is not None:
        args += ["--property", "parse.key=true", "--property", f"key.separator={key_separator}"]
    subprocess.run(java_tool("kafka.tools.ConsoleProducer", *args), input="\n".join(lines) + "\n", text=True,
                   check=True, capture_output=True, timeout=timeout_s)


def console_consume(bootstrap: str, topic: str, max_messages: int, timeout_s: float = 120) -> list[str]:
    """Values of `topic` from the beginning, read by Kafka's own Java console consumer."""
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning",
            "--max-messages", str(max_messages), "--timeout-ms", "20000"]
    result = subprocess.run(java_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", *args), text=True,
                            capture_output=True, timeout=timeout_s)
    return [line for line in result.stdout.splitlines() if line.strip()]


def batch_codecs(log_dir: Path, topic: str) -> set[str]:
    """The codecs of every record batch stored for `topic`, as Kafka's DumpLogSegments reads them."""
    segments = [str(path) for path in log_dir.glob(f"{topic}-*/*.log") if path.stat().st_size]
    if not segments:
        return set()
    result = subprocess.run(java_tool("kafka.tools.DumpLogSegments", "--files", ",".join(segments)), text=True,
                            capture_output=True, check=True, timeout=120)
    return set(re.findall(r"compresscodec: (\w+)", result.stdout))


def problem() -> Optional[str]:
    """Why no broker can be started here, or None."""
    if shutil.which("java") is None:
        return "no `java` on PATH (Java 17 runs the Apache Kafka broker)"
    if not list(LIBS.glob("kafka_2.13-*.jar")):
        return f"the Apache Kafka jars are not resolved ({LIBS}): run `make kafka-jars`"
    return None


class ApacheKafka:
    def __init__(self, home: Path, port: Optional[int] = None, controller_port: Optional[int] = None):
        self.home = Path(home)
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.process: Optional[subprocess.Popen] = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "data"

    def _java(self, main_class: str, *args: str) -> list[str]:
        return ["java", HEAP, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j.configuration=file:{self._log4j()}", "-cp", f"{LIBS}/*", main_class, *args]

    def _log4j(self) -> Path:
        path = self.home / "log4j.properties"
        path.write_text("log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
                        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
                        "log4j.logger.kafka.server.KafkaServer=INFO\nlog4j.logger.kafka.server.BrokerServer=INFO\n")
        return path

    def _properties(self) -> Path:
        path = self.home / "server.properties"
        path.write_text(SERVER_PROPERTIES.format(port=self.port, controller_port=self.controller_port,
                                                 log_dir=self.log_dir))
        return path

    def format(self) -> None:
        """Format the log directory once; a formatted one (a restart) keeps its data."""
        self.home.mkdir(parents=True, exist_ok=True)
        properties = self._properties()
        if (self.log_dir / "meta.properties").exists():
            return
        subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
                                  "-c", str(properties)), check=True, capture_output=True, timeout=120)

    def start(self, timeout_s: float = 120.0, detached: bool = False) -> "ApacheKafka":
        self.format()
        command = self._java("kafka.Kafka", str(self.home / "server.properties"))
        self.process = processes.spawn(command, {**os.environ}, self.home / "broker.log",
                                       on_parent_death=None if detached else signal.SIGKILL)
        (self.home / "broker.pid").write_text(str(self.process.pid))
        try:
            wait_for_port("127.0.0.1", self.port, timeout_s, self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"Apache Kafka did not start: {exc}\n{self.log_tail()}") from None
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
        path = self.home / "broker.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apache_kafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--home", default=str(ROOT / ".kafka" / "broker"))
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    args = parser.parse_args(argv)
    home, pid_file = Path(args.home), Path(args.home) / "broker.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    running = pid is not None and _alive(pid)
    if args.action == "status" or (args.action == "start" and running):
        print(f"Apache Kafka {'running (pid %d)' % pid if running else 'not running'}; bootstrap 127.0.0.1:{args.port}")
        return 0 if running or args.action == "status" else 1
    if args.action == "stop":
        if running:
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
        return 0
    if problem():
        print(f"apache_kafka: {problem()}", file=sys.stderr)
        return 2
    broker = ApacheKafka(home, args.port, args.controller_port).start(detached=True)
    print(f"Apache Kafka running (pid {broker.process.pid}); export PROX_TEST_KAFKA_BOOTSTRAP={broker.bootstrap_servers}")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
