"""The real-Kafka test tier's broker and Kafka's own Java tools (console producer and consumer, DumpLogSegments).

The broker is the product's embedded one (`prox.broker.kafka.KafkaBroker`: the pinned Apache Kafka, KRaft, a
durable log directory); `make kafka` runs one for manual use (`python -m prox.broker start`).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Optional

from prox.broker import jars, java
from prox.broker.kafka import KafkaBroker as ApacheKafka  # noqa: F401  (the tier's name for it)


def java_tool(main_class: str, *args: str, heap: str = "-Xmx256m") -> list[str]:
    """A command running one of Kafka's own Java tools (console producer/consumer, DumpLogSegments)."""
    return [java.find_java().executable, heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", f"{jars.ensure_jars()}/*", main_class, *args]


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
    try:
        java.find_java()
        jars.ensure_jars()
    except (java.JavaNotFound, jars.JarProblem, OSError, RuntimeError) as exc:
        return str(exc)
    return None
