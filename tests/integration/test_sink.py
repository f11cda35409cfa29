"""`prox service sink` on a real broker: SIGKILL it mid-shard, several times, while documents stream.

Afterwards the published shards hold every refined id exactly once, every shard in the manifest
(`shards.state/manifest.jsonl`) exists with its checksum, the data folder holds nothing but those shards, no
temporary file is left, and the folder read back with pyarrow equals the refined messages. The test restarts the sink after a crash-only exit (code 70) as its supervisor would
(the sink exits so when faust skips an offset: see core.py). `sink_sigkill_scenario(bootstrap_servers,
workdir, idempotent=...)` is broker-agnostic:
the embedded-broker tier runs it here; the Apache Kafka tier can call it with its bootstrap address.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import polars as pl
import pyarrow.dataset as ds
import pytest

from prox.common.broker import free_port
from prox.common.config import KafkaSettings
from prox.common.kafka_io import create_topics
from prox.common.processes import spawn
from prox.sink.app import CRASH_EXIT_CODE
from prox.sink.manifest import Manifest
from prox.sink.rows import COLUMNS, to_row
from prox.sink.service import wait_for_shards
from prox.sink.storage import Storage
from prox.sink.verify import check, shard_ids
from prox_proto import ExecutionReport, ModelInfo, RefinedDocument, encode_json
from prox_proto.topics import Topics
from tests.fixtures.scenarios import PAGES
from tests.helpers.kafka import produce, read_all

pytestmark = [pytest.mark.integration]

PIECE = 8  # documents per produced piece
RESENT = 3  # earlier documents re-sent with every piece (upstream at-least-once redelivery)


def refined_document(tag: str, i: int) -> RefinedDocument:
    page = PAGES[i % len(PAGES)]
    return RefinedDocument(
        id=f"{tag}-{i}", text=page["text"][:3000], dropped=False, url=page.get("url"), source="sink-test",
        metadata={"i": i, "page_type": (page.get("metadata") or {}).get("page_type")}, ingest_time=1.7e9 + i,
        doc_program="keep_doc()", chunk_program=f"remove_lines(0, {i % 5})", keep_prob=round(0.5 + (i % 50) / 100, 2),
        report=ExecutionReport(outcome="edited", calls_applied=1, lines_removed=i % 5, words_in=100, words_out=90),
        models=[ModelInfo(name="prox_doc", version="t1", backend="heuristic"),
                ModelInfo(name="prox_chunk", version="t2", backend="heuristic")],
    )


class SinkProcess:
    """`prox service sink` as a child process (its own session: signals reach only it)."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        # Its own session, and killed by the kernel if this test process dies (PR_SET_PDEATHSIG).
        self.process = spawn([sys.executable, "-m", "prox.cli.main", "service", "sink"],
                             env={**self.env, "PROX_HTTP_PORT": str(self.port)}, log_path=self.log_path)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def supervise(self) -> int:
        """Like a supervisor (Kubernetes, `prox local`): restart the sink after its crash-only exit
        (CRASH_EXIT_CODE, e.g. an offset gap detected); returns 1 when it did. Any other exit fails."""
        if self.alive():
            return 0
        code = self.process.returncode
        assert code == CRASH_EXIT_CODE, f"sink exited {code}; log {self.log_path}"
        self.start()
        return 1

    async def answers(self, session: aiohttp.ClientSession, path: str) -> bool:
        try:
            async with session.get(f"http://127.0.0.1:{self.port}{path}") as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Sums of the sink's series by name (0 while it is not answering yet)."""
        try:
            async with session.get(f"http://127.0.0.1:{self.port}/metrics") as response:
                text = await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return {}
        sums: dict[str, float] = {}
        for name, value in re.findall(r"^(prox_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M):
            sums[name] = sums.get(name, 0.0) + float(value)
        return sums


async def sink_sigkill_scenario(bootstrap_servers: str, workdir: Path, *, idempotent: bool = False,
                                kills: int = 3, documents: int = 240, partitions: int = 4,
                                timeout_s: float = 240.0) -> dict:
    """Stream `documents` refined messages (with redeliveries) into a fresh topic while SIGKILLing the sink
    `kills` times with a non-empty open shard; then stop it and check the shards. Returns counts."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap_servers, idempotent=idempotent)
    tag = f"sink{uuid.uuid4().hex[:6]}"
    topics = Topics(**{name: f"{tag}.{name}" for name in Topics.__struct_fields__})
    await create_topics(kafka, [topics.refined, topics.dropped, topics.dlq], partitions, 1)
    shards = workdir / "shards"
    env = {
        **os.environ, "PYTHONUNBUFFERED": "1",
        "PROX_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "PROX_KAFKA_IDEMPOTENT": str(idempotent).lower(),
        "PROX_KAFKA_SESSION_TIMEOUT_MS": "6000", "PROX_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "PROX_TOPICS_REFINED": topics.refined, "PROX_TOPICS_DROPPED": topics.dropped, "PROX_TOPICS_DLQ": topics.dlq,
        "PROX_GROUP_ID": f"{tag}-sink", "PROX_COMMIT_INTERVAL_S": "0.2",
        "PROX_SINK_PATH": str(shards), "PROX_SINK_WRITER_ID": "test",
        "PROX_SINK_MAX_BYTES": "20000", "PROX_SINK_MAX_AGE_S": "2", "PROX_SINK_ROW_GROUP_ROWS": "4",
    }
    docs = [refined_document(tag, i) for i in range(documents)]
    sink = SinkProcess(env, workdir / "sink.log")
    sink.start()
    sent = 0
    killed_mid_shard = 0
    crash_restarts = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    async def send_piece() -> None:
        nonlocal sent
        piece = docs[sent:sent + PIECE]
        again = docs[max(0, sent - 4 * PIECE):sent][:RESENT]
        await produce(kafka, topics.refined, [(d.id.encode(), encode_json(d)) for d in piece + again])
        sent += len(piece)

    await produce(kafka, topics.refined, [(b"poison", b"{not a refined document")])  # -> dead letter
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while killed_mid_shard < kills:
                assert loop.time() < deadline, f"sink made no progress; log {workdir / 'sink.log'}"
                crash_restarts += sink.supervise()
                assert sent < len(docs), "documents ran out before the kills were done"
                await send_piece()
                for _ in range(10):  # pacing only: look at the sink a few times after each piece
                    await asyncio.sleep(0.3)
                    seen = await sink.metrics(session)
                    # Mid-shard: this incarnation published a shard and now holds an open one.
                    if seen.get("prox_sink_shards_total", 0) >= 1 and seen.get("prox_sink_open_shard_rows", 0) > 0:
                        sink.kill()
                        killed_mid_shard += 1
                        sink.start()
                        break
            while sent < len(docs):
                await send_piece()
            ids = {d.id for d in docs}
            while True:
                crash_restarts += sink.supervise()
                try:
                    await wait_for_shards(shards, ids, timeout_s=1.0)
                    break
                except TimeoutError:
                    assert loop.time() < deadline, f"shards incomplete; log {workdir / 'sink.log'}"
            while not await sink.answers(session, "/readyz"):  # joined, table recovered, partitions assigned
                crash_restarts += sink.supervise()
                assert loop.time() < deadline, "the sink never answered /readyz"
                await asyncio.sleep(0.3)
            assert await sink.answers(session, "/healthz")
            while True:  # every record durable or committed: the lag the alert watches drains to 0
                crash_restarts += sink.supervise()
                seen = await sink.metrics(session)
                if seen.get("prox_consumer_lag", -1) == 0 and seen.get("prox_sink_open_shard_rows", -1) == 0:
                    break
                assert loop.time() < deadline, f"the sink's lag never drained: {seen}"
                await asyncio.sleep(0.3)
        assert sink.stop() == 0
    finally:
        if sink.alive():  # the scenario failed: leave the sink's task stacks in its log first
            sink.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1.0)
            sink.kill()

    storage = Storage(str(shards), "checker")
    entries = Manifest(storage).entries()
    assert check(storage, entries) == [], "a shard in the manifest is missing or differs from its checksum"
    counts = shard_ids(storage, entries)
    assert set(counts) == ids and set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
    visible = {p.relative_to(shards).as_posix() for p in shards.rglob("*")}
    assert visible == {e.file for e in entries}, visible  # nothing but the shards: a folder reader reads it
    assert [p for p in storage.tmp_root.rglob("*.tmp") if p.is_file()] == [], "a temporary file was left behind"
    table = ds.dataset(str(shards), format="parquet").to_table()
    assert table.schema.names == list(COLUMNS)
    assert pl.read_parquet(shards).height == table.num_rows  # polars refuses a folder holding anything else
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == sorted((to_row(d) for d in docs), key=lambda r: r["id"])
    letters = [json.loads(r.value) for r in await read_all(kafka, topics.dlq)]
    assert letters and {(x["reason"], x["key"], x["service"]) for x in letters} == {("invalid_message", "poison", "sink")}
    return {"shards": len(entries), "rows": table.num_rows, "kills": killed_mid_shard, "crash_restarts": crash_restarts,
            "redelivered_in_input": sent // PIECE * RESENT}


async def test_sigkill_the_sink_mid_shard_repeatedly_every_id_lands_exactly_once(broker, tmp_path):
    result = await sink_sigkill_scenario(broker.bootstrap_servers, tmp_path, idempotent=False)
    print(f"\nsink SIGKILL x{result['kills']} (+{result['crash_restarts']} crash-only restarts): "
          f"{result['rows']} rows in {result['shards']} shards")
    assert result["kills"] == 3
