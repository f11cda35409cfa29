"""Real Apache Kafka through testcontainers; skipped, with the reason, where no Docker engine runs."""
from __future__ import annotations

import os
import subprocess

import pytest

DOCKER_SOCKET = "/var/run/docker.sock"


def docker_engine_problem() -> str | None:
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
def real_kafka():
    problem = docker_engine_problem()
    if problem:
        pytest.skip(problem + " (the real-Kafka tier runs where a Docker engine does)")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
        yield kafka
