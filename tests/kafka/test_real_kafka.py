"""The fault scenarios against Apache Kafka, plus what the embedded broker cannot show: the idempotent
producer, aborted-transaction filtering and a broker restart."""
from __future__ import annotations

import asyncio
import signal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.fixtures.stack import start_stack
from tests.integration.test_faults import check_accounted, documents, stream, wait_for_progress

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
async def kafka_stack(real_kafka, tmp_path_factory):
    running = await start_stack(tmp_path_factory.mktemp("real-kafka"), replicas={"executor": 2}, partitions=4,
                                external_kafka=real_kafka.get_bootstrap_server())
    try:
        yield running
    finally:
        running.stack.stop()


async def test_idempotent_producer_is_on_and_works(kafka_stack):
    assert kafka_stack.kafka.idempotent
    assert kafka_stack.stack.children["executor"].env["PROX_KAFKA_IDEMPOTENT"] == "true"
    docs = documents("idem", 40)
    await kafka_stack.produce(docs)
    assert await check_accounted(kafka_stack, docs) >= 0


@pytest.mark.parametrize("service", ["doc-refiner", "chunk-refiner", "executor"])
async def test_sigkill_a_service_on_real_kafka(kafka_stack, service):
    docs = documents(f"rk-kill-{service}", 200)
    producing = asyncio.create_task(stream(kafka_stack, docs))
    await wait_for_progress(kafka_stack, [d["id"] for d in docs], at_least=20)
    kafka_stack.stack.kill(service, signal.SIGKILL)
    kafka_stack.stack.check()
    await producing
    await check_accounted(kafka_stack, docs)


async def test_aborted_transactions_are_not_read(real_kafka):
    bootstrap = real_kafka.get_bootstrap_server()
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
    docs = documents("rk-restart", 200)
    producing = asyncio.create_task(stream(kafka_stack, docs))
    await wait_for_progress(kafka_stack, [d["id"] for d in docs], at_least=20)
    real_kafka.get_wrapped_container().restart(timeout=10)
    await producing
    await check_accounted(kafka_stack, docs, timeout_s=400)
