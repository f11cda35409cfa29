"""Plain Kafka reads and writes for tools (topics, produce, consume, dlq): no consumer group."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable, Optional

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .config import KafkaSettings, kafka_client_options


async def create_topics(kafka: KafkaSettings, names: Iterable[str], partitions: int, replication_factor: int,
                        retention_ms: Optional[int] = None) -> dict[str, str]:
    """Create the topics that do not exist yet; returns name → "created" | "exists"."""
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = {"retention.ms": str(retention_ms)} if retention_ms else {}
        wanted = [NewTopic(name, partitions, replication_factor, topic_configs=configs)
                  for name in names if name not in existing]
        status = {name: "exists" for name in names if name in existing}
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
            status.update({topic.name: "created" for topic in wanted})
        return status
    finally:
        await admin.close()


def make_producer(kafka: KafkaSettings, **overrides) -> AIOKafkaProducer:
    options = dict(acks="all", enable_idempotence=kafka.idempotent, linger_ms=10, max_request_size=16_777_216)
    options.update(overrides)
    return AIOKafkaProducer(**kafka_client_options(kafka), **options)


async def topic_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from fresh cluster metadata.

    A consumer without a subscription knows no topic's partitions yet: Apache Kafka answers its start-up
    metadata request with no topics (Tansu with all of them), so ask for the whole cluster's metadata."""
    cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
    return [TopicPartition(topic, p) for topic in topics for p in sorted(cluster.partitions_for_topic(topic) or [])]


async def read_topic(kafka: KafkaSettings, topic: str, follow: bool = False, idle_s: float = 1.0,
                     stop: Optional[asyncio.Event] = None) -> AsyncIterator:
    """Every record of `topic` from the beginning; without `follow`, up to the end offsets seen at start."""
    consumer = AIOKafkaConsumer(**kafka_client_options(kafka), enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
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
