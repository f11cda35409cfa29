"""Fault tolerance on the real embedded broker and real Triton: kills, an outage, a failover.

Each scenario streams real pages while something fails, then checks that every input id ends in exactly
one of refined / dropped / dead-letter after de-duplication by id, with the right content.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import re
import signal

import aiohttp
import pytest

from prox.executor import execute_document
from tests.fixtures.paths import SAMPLE
from tests.fixtures.stack import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

with gzip.open(SAMPLE, "rt", encoding="utf-8") as _handle:
    PAGES = [json.loads(line) for line in _handle]


@pytest.fixture(scope="module")
async def fault_stack(tmp_path_factory):
    running = await start_stack(tmp_path_factory.mktemp("faults"), replicas={"executor": 2}, partitions=4,
                                service_env={"PROX_BATCH_SIZE": "16", "PROX_MODEL_BATCH_SIZE": "8"})
    try:
        yield running
    finally:
        running.stack.stop()


def documents(tag: str, count: int) -> list[dict]:
    return [{"id": f"{tag}-{i}", "text": PAGES[i % len(PAGES)]["text"]} for i in range(count)]


async def stream(stack, docs: list[dict], pieces: int = 10, pause_s: float = 0.3) -> None:
    size = max(1, len(docs) // pieces)
    for start in range(0, len(docs), size):
        await stack.produce(docs[start:start + size])
        await asyncio.sleep(pause_s)


async def wait_for_progress(stack, ids: list[str], at_least: int) -> None:
    wanted = set(ids)
    while True:
        found = await stack.outputs()
        if sum(len(wanted & set(messages)) for messages in found.values()) >= at_least:
            return
        await asyncio.sleep(0.2)


async def check_accounted(stack, docs: list[dict], timeout_s: float = 240) -> int:
    """Every id in exactly one output with offline-equal content; returns the number of duplicates."""
    ids = [doc["id"] for doc in docs]
    found = await stack.wait_for_outputs(ids, timeout_s=timeout_s)
    texts = {doc["id"]: doc["text"] for doc in docs}
    for doc_id in ids:
        roles = [role for role, messages in found.items() if doc_id in messages]
        assert roles in (["refined"], ["dropped"]), (doc_id, roles)
        message = found[roles[0]][doc_id]
        offline = execute_document(texts[doc_id], message["doc_program"], message["chunk_program"], message["keep_prob"])
        assert (message["text"], message["dropped"]) == (offline.text, offline.dropped)
    records = await stack.records()
    wanted = set(ids)
    total = sum(1 for role in records.values() for r in role if json.loads(r.value).get("id") in wanted)
    return total - len(ids)


@pytest.mark.parametrize("service", ["doc-refiner", "chunk-refiner", "executor"])
async def test_sigkill_a_service_mid_stream_loses_nothing(fault_stack, service, record_property):
    docs = documents(f"kill-{service}", 240)
    producing = asyncio.create_task(stream(fault_stack, docs))
    await wait_for_progress(fault_stack, [d["id"] for d in docs], at_least=20)
    fault_stack.stack.kill(service, signal.SIGKILL)  # batches in flight, offsets uncommitted
    fault_stack.stack.check()  # restarts it
    await producing
    duplicates = await check_accounted(fault_stack, docs)
    record_property("duplicates", duplicates)
    print(f"\nSIGKILL {service}: {len(docs)} documents, {duplicates} duplicates after restart")


async def consumer_lag(stack) -> float:
    total = 0.0
    async with aiohttp.ClientSession() as session:
        for name, url in stack.metrics_urls.items():
            if name == "triton":
                continue
            async with session.get(url) as response:
                text = await response.text()
            total += sum(float(v) for v in re.findall(r"^prox_consumer_lag\{.*\} (\S+)$", text, re.M))
    return total


async def test_model_server_outage_longer_than_backoff_ceiling(fault_stack):
    docs = documents("outage", 120)
    fault_stack.stack.hold("model-server")
    await stream(fault_stack, docs, pieces=4, pause_s=2.5)  # 10 s down: past the 4 s backoff ceiling
    fault_stack.stack.release("model-server")
    await check_accounted(fault_stack, docs)
    found = await fault_stack.outputs()
    assert not [doc_id for doc_id in found["dlq"] if doc_id.startswith("outage-")]
    for _ in range(60):
        if await consumer_lag(fault_stack) == 0:
            break
        await asyncio.sleep(1)
    assert await consumer_lag(fault_stack) == 0


async def test_replica_stopped_mid_stream_its_partner_takes_over(fault_stack):
    docs = documents("failover", 240)
    producing = asyncio.create_task(stream(fault_stack, docs))
    await wait_for_progress(fault_stack, [d["id"] for d in docs], at_least=20)
    fault_stack.stack.hold("executor-1", signal.SIGKILL)
    try:
        await producing
        await check_accounted(fault_stack, docs)
    finally:
        fault_stack.stack.release("executor-1")
