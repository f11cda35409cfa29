"""Real Apache Kafka for the `tests/kafka` tier, from the first of these that works:

1. `PROX_TEST_KAFKA_BOOTSTRAP=host:port`: a broker you run (e.g. `make kafka`); the restart test then skips,
   since it cannot restart a broker it does not own.
2. The Maven Central jars (`make kafka-jars`, run by `make test`) and `java`: a KRaft broker started here,
   with a durable log directory, restarted by the restart test.
3. A Docker engine: testcontainers' Kafka.
Where none works, the tier skips with the reasons.
"""
from __future__ import annotations

import os
import subprocess
from typing import Optional

import pytest

from tests.helpers import apache_kafka

DOCKER_SOCKET = "/var/run/docker.sock"


class KafkaUnderTest:
    """The broker the tier runs against; `restart` is None where the tier does not own it."""

    def __init__(self, bootstrap_servers: str, restart=None, kind: str = "", log_dir=None):
        self.bootstrap_servers, self.restart, self.kind = bootstrap_servers, restart, kind
        self.log_dir = log_dir  # the broker's log directory, where the tier runs the broker itself


def docker_engine_problem() -> Optional[str]:
    """Why no Docker engine can be used here, or None when one answers."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not os.path.exists(DOCKER_SOCKET):
        return f"no Docker engine: {DOCKER_SOCKET} does not exist and DOCKER_HOST is unset"
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine: `docker info` failed ({exc})"
    if result.returncode != 0 or not result.stdout.strip():
        return f"no Docker engine: `docker info` answered {result.stderr.strip()[:200]!r}"
    return None


@pytest.fixture(scope="session")
def real_kafka(tmp_path_factory):
    external = os.environ.get("PROX_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaUnderTest(external, kind="external")
        return
    jars_problem = apache_kafka.problem()
    if jars_problem is None:
        broker = apache_kafka.ApacheKafka(tmp_path_factory.mktemp("apache-kafka")).start()
        try:
            yield KafkaUnderTest(broker.bootstrap_servers, restart=broker.restart, kind="apache-kafka-jars",
                                 log_dir=broker.log_dir)
        finally:
            broker.stop()
        return
    docker_problem = docker_engine_problem()
    if docker_problem:
        pytest.skip(f"no Apache Kafka: {jars_problem}; {docker_problem}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
        container = kafka.get_wrapped_container()
        yield KafkaUnderTest(kafka.get_bootstrap_server(), restart=lambda: container.restart(timeout=10),
                             kind="testcontainers")


@pytest.fixture(scope="session")
async def kafka_stack(real_kafka, tmp_path_factory):
    """The local stack's model server and services (two executor replicas) on the real broker."""
    from tests.fixtures.stack import start_stack

    running = await start_stack(tmp_path_factory.mktemp("real-kafka"), replicas={"executor": 2}, partitions=4,
                                external_kafka=real_kafka.bootstrap_servers)
    try:
        yield running
    finally:
        running.stack.stop()
