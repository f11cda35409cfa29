"""The fault and poison scenarios against Apache Kafka, plus what the embedded broker cannot show: the
idempotent producer, aborted-transaction filtering, a broker restart and the broker's own size limit."""
from __future__ import annotations

import base64
import json
import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from tests.fixtures.scenarios import (broker_restart_scenario, check_accounted, documents,
                                      model_server_outage_scenario, poison_scenario, replica_failover_scenario,
                                      sigkill_scenario)
from tests.helpers.kafka import produce

pytestmark = pytest.mark.kafka


async def test_idempotent_producer_is_on_and_works(kafka_stack):
    assert kafka_stack.kafka.idempotent
    assert kafka_stack.stack.children["executor"].env["PROX_KAFKA_IDEMPOTENT"] == "true"
    docs = documents("idem", 40)
    await kafka_stack.produce(docs)
    assert await check_accounted(kafka_stack, docs) >= 0


@pytest.mark.parametrize("service", ["doc-refiner", "chunk-refiner", "executor"])
async def test_sigkill_a_service_on_real_kafka(kafka_stack, service):
    duplicates = (await sigkill_scenario(kafka_stack, service, tag=f"rk-kill-{service}", count=200)).duplicates
    print(f"\nSIGKILL {service} on Apache Kafka: 200 documents, {duplicates} duplicates after restart")


async def test_model_server_outage_on_real_kafka(kafka_stack):
    await model_server_outage_scenario(kafka_stack, tag="rk-outage")


async def test_replica_failover_on_real_kafka(kafka_stack):
    await replica_failover_scenario(kafka_stack, "executor-1", tag="rk-failover")


async def test_poison_messages_on_real_kafka(kafka_stack):
    await poison_scenario(kafka_stack, "rk-poison", huge=None)


async def test_broker_rejects_a_message_over_max_message_bytes(kafka_stack):
    # 5 MB that zstd (the producers' codec) cannot shrink below the broker's 1 MB default
    huge = json.dumps({"id": "rk-huge", "text": base64.b64encode(os.urandom(4_000_000)).decode()}).encode()
    with pytest.raises(MessageSizeTooLargeError):
        await produce(kafka_stack.kafka, kafka_stack.topics.raw, [(b"rk-huge", huge)])


async def test_aborted_transactions_are_not_read(real_kafka):
    bootstrap = real_kafka.bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="prox-test-tx")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait("tx-topic", b"committed")
        await producer.begin_transaction()
        await producer.send_and_wait("tx-topic", b"aborted")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("tx-topic", bootstrap_servers=bootstrap, isolation_level="read_committed",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        values = [record.value for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    assert values == [b"committed"]


async def test_broker_restart_mid_stream_loses_nothing(kafka_stack, real_kafka):
    if real_kafka.restart is None:
        pytest.skip(f"the tier does not own the broker at {real_kafka.bootstrap_servers}, so cannot restart it")
    duplicates = (await broker_restart_scenario(kafka_stack, real_kafka.restart, "rk-restart", count=200)).duplicates
    print(f"\nbroker restarted mid-stream: 200 documents, {duplicates} duplicates")


async def test_sink_killed_mid_shard_on_real_kafka(real_kafka, tmp_path):
    from tests.integration.test_sink import sink_sigkill_scenario

    result = await sink_sigkill_scenario(real_kafka.bootstrap_servers, tmp_path, idempotent=True)
    assert result["kills"] == 3
