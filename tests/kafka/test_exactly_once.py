"""Exactly-once processing on Apache Kafka: after SIGKILL of any service mid-stream, the output topics read
`read_committed` hold each id exactly once (the topics themselves, before any de-duplication by the sink)."""
from __future__ import annotations

import pytest

from tests.fixtures.scenarios import sigkill_scenario
from tests.fixtures.stack import start_stack
from tests.helpers import apache_kafka

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def exactly_once_stack(tmp_path_factory):
    """Its own broker: the transactional groups and topics stay apart from the at-least-once stack's."""
    if apache_kafka.problem():
        pytest.skip(f"no Apache Kafka broker here: {apache_kafka.problem()}")
    broker = apache_kafka.ApacheKafka(tmp_path_factory.mktemp("eos-kafka")).start()
    try:
        running = await start_stack(tmp_path_factory.mktemp("eos-stack"), partitions=4,
                                    external_kafka=broker.bootstrap_servers,
                                    # at-least-once would re-send whatever it output in the 5 s before a kill
                                    service_env={"PROX_EXACTLY_ONCE": "true", "PROX_COMMIT_INTERVAL_S": "5"})
        try:
            yield running
        finally:
            running.stack.stop()
    finally:
        broker.stop()


@pytest.mark.parametrize("service", ["doc-refiner", "executor", "chunk-refiner"])
async def test_sigkill_leaves_no_duplicate_in_the_output_topics(exactly_once_stack, service):
    assert exactly_once_stack.isolation_level == "read_committed"
    run = await sigkill_scenario(exactly_once_stack, service, tag=f"eos-kill-{service}", count=200)
    assert run.duplicates == 0
