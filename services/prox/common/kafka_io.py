"""Plain Kafka reads and writes for tools (topics, produce, consume, dlq): no consumer group."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable, Optional

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import NoError, TopicAlreadyExistsError, for_code

from .config import KafkaSettings, kafka_client_options


class TopicsRefused(RuntimeError):
    """The broker refused to create some topics: name → its message."""

    def __init__(self, refused: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in refused.items()))
        self.refused = refused


async def create_topics(kafka: KafkaSettings, names: Iterable[str], partitions: int,
                        replication_factor: Optional[int] = None, retention_ms: Optional[int] = None,
                        check: bool = True) -> dict[str, str]:
    """Create the topics that do not exist yet; returns name → "created" | "exists" | "refused: MESSAGE".

    The broker answers per topic, so each answer is read: a refused topic is never reported as created.
    `replication_factor` None means min(3, brokers in the cluster). With `check`, any refusal raises
    `TopicsRefused` (after the others were created)."""
    names = list(names)
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        status = {name: "exists" for name in names if name in existing}
        wanted = [name for name in names if name not in existing]
        if wanted:
            if replication_factor is None:
                replication_factor = min(3, len((await admin.describe_cluster())["brokers"]))
            configs = {"retention.ms": str(retention_ms)} if retention_ms else {}
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor, topic_configs=configs) for name in wanted])
            status.update(_topic_results(response))
    finally:
        await admin.close()
    refused = {name: state[len("refused: "):] for name, state in status.items() if state.startswith("refused")}
    if check and refused:
        raise TopicsRefused(refused)
    return {name: status[name] for name in names}


def _topic_results(response) -> dict[str, str]:
    """name → state from a CreateTopics response (v0 has no error message)."""
    results = {}
    for answer in response.topic_errors:
        name, code, message = answer[0], answer[1], answer[2] if len(answer) > 2 else None
        if code == NoError.errno:
            results[name] = "created"
        elif code == TopicAlreadyExistsError.errno:
            results[name] = "exists"
        else:
            error = for_code(code)
            results[name] = f"refused: {error.__name__} ({code}): {message or error.description}"
    return results


def producer_options(kafka: KafkaSettings) -> dict:
    """What every producer of the project shares: acknowledged by every in-sync replica, idempotent where the
    broker allows it, compressed batches (`kafka.compression_type`)."""
    codec = None if kafka.compression_type == "none" else kafka.compression_type
    return dict(acks="all", enable_idempotence=kafka.idempotent, compression_type=codec,
                max_batch_size=kafka.producer_batch_bytes)


def make_producer(kafka: KafkaSettings, **overrides) -> AIOKafkaProducer:
    options = dict(producer_options(kafka), linger_ms=10, max_request_size=16_777_216)
    options.update(overrides)
    return AIOKafkaProducer(**kafka_client_options(kafka), **options)


async def topic_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from fresh cluster metadata.

    A consumer without a subscription knows no topic's partitions yet: Apache Kafka answers its start-up
    metadata request with no topics (Tansu with all of them), so ask for the whole cluster's metadata."""
    cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
    return [TopicPartition(topic, p) for topic in topics for p in sorted(cluster.partitions_for_topic(topic) or [])]


async def read_topic(kafka: KafkaSettings, topic: str, follow: bool = False, idle_s: float = 1.0,
                     stop: Optional[asyncio.Event] = None, isolation_level: str = "read_uncommitted") -> AsyncIterator:
    """Every record of `topic` from the beginning; without `follow`, up to the end offsets seen at start
    (`read_committed`: only those of committed transactions, up to the last stable offset)."""
    consumer = AIOKafkaConsumer(**kafka_client_options(kafka), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None, isolation_level=isolation_level)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while stop is None or not stop.is_set():
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=1000)
            for records in batch.values():
                for record in records:
                    yield record
            if not follow and all([await consumer.position(tp) >= end[tp] for tp in partitions]):
                return
    finally:
        await consumer.stop()
