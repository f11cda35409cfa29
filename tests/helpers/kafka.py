"""Test helpers: run a service in-process, produce messages, read topics back."""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Iterable, Optional

from prox.common.kafka_io import create_topics, make_producer, read_topic
from prox.common.runtime import StreamService


async def ensure_topics(kafka, topics, partitions: int = 2) -> None:
    await create_topics(kafka, topics.all(), partitions, 1)


async def produce(kafka, topic: str, messages: Iterable[tuple[Optional[bytes], bytes]]) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(kafka, topic: str, isolation_level: str = "read_uncommitted") -> list:
    return [record async for record in read_topic(kafka, topic, isolation_level=isolation_level)]


async def wait_for_records(kafka, topics: list[str], count: int, timeout_s: float = 60.0) -> dict[str, list]:
    """Poll the topics until together they hold at least `count` records."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = {topic: await read_all(kafka, topic) for topic in topics}
        total = sum(len(records) for records in found.values())
        if total >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def running(stage, settings):
    """A StreamService running in this event loop; drained and stopped on exit."""
    service = StreamService(stage, settings)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.request_stop()
        await asyncio.wait_for(task, timeout=60)


def by_id(records) -> dict[str, dict]:
    out = {}
    for record in records:
        message = json.loads(record.value)
        out.setdefault(message["id"], message)
    return out
