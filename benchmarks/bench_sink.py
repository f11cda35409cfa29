"""Sink throughput (rows/s, MB/s) against writing the same rows with pyarrow alone, in the same run.

1. in process: `SinkCore.handle` over pre-encoded refined messages (JSON decode, id table, row
   conversion, Parquet zstd row groups, temp file + fsync + sha256 + manifest + rename per shard)
   vs `pyarrow.Table.from_pylist` + `pq.write_table(zstd)` of the same rows (decoded beforehand);
2. end to end: the same messages in a topic of the embedded broker, `prox service sink` started,
   time until the manifest lists every row (faust consumption included; start-up excluded).

    python benchmarks/bench_sink.py [--documents 6000] [--no-broker]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchtools import RESULTS, default_data, load_pages, machine  # noqa: E402

from prox.sink.core import SinkCore  # noqa: E402
from prox.sink.dedup import MemoryTable  # noqa: E402
from prox.sink.manifest import Manifest  # noqa: E402
from prox.sink.rows import to_row, to_table  # noqa: E402
from prox.sink.settings import ShardSettings, SinkSettings  # noqa: E402
from prox_proto import ExecutionReport, ModelInfo, RefinedDocument, decode_json, encode_json  # noqa: E402
from prox_proto.topics import Topics  # noqa: E402

SHARD_BYTES = 32 * 1024 * 1024


def messages(count: int) -> list[bytes]:
    pages = load_pages(default_data())
    out = []
    for i in range(count):
        page = pages[i % len(pages)]
        doc = RefinedDocument(
            id=f"bench-{i}", text=page["text"], dropped=False, url=page.get("url"), source="bench",
            metadata={"page_type": "article", "i": i}, ingest_time=1.7e9 + i, doc_program="keep_doc()",
            chunk_program="remove_lines(0, 3)", keep_prob=0.9,
            report=ExecutionReport(outcome="edited", calls_applied=1, lines_removed=3, words_in=500, words_out=450),
            models=[ModelInfo(name="prox_doc", version="v1", backend="heuristic"),
                    ModelInfo(name="prox_chunk", version="v1", backend="heuristic")])
        out.append(encode_json(doc))
    return out


async def run_core(payloads: list[bytes], path: Path) -> float:
    settings = SinkSettings(topics=Topics(), sink=ShardSettings(path=str(path), writer_id="bench", max_bytes=SHARD_BYTES,
                                                                 max_age_s=3600))
    core = SinkCore(settings, MemoryTable(), offload=False)
    core.recover()
    started = time.perf_counter()
    for offset, payload in enumerate(payloads):
        await core.handle("prox.refined", offset % 4, offset, None, payload, lambda: None)
    await core.close_all()
    return time.perf_counter() - started


def run_pyarrow(payloads: list[bytes], path: Path) -> float:
    """The baseline: the same rows (already decoded) written with pyarrow alone, one file per shard's worth."""
    rows = [to_row(decode_json(p, RefinedDocument)) for p in payloads]
    path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    chunk, size, index = [], 0, 0
    for row, payload in zip(rows, payloads):
        chunk.append(row)
        size += len(payload)
        if size >= SHARD_BYTES:
            pq.write_table(to_table(chunk), path / f"{index}.parquet", compression="zstd", row_group_size=4096)
            chunk, size, index = [], 0, index + 1
    if chunk:
        pq.write_table(to_table(chunk), path / f"{index}.parquet", compression="zstd", row_group_size=4096)
    return time.perf_counter() - started


def run_end_to_end(payloads: list[bytes], workdir: Path, batch_bytes: int = 16384) -> dict:
    from prox.common.broker import EmbeddedBroker, free_port
    from prox.common.config import KafkaSettings
    from prox.common.kafka_io import create_topics, make_producer
    from prox.common.processes import spawn

    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    sink = None
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, idempotent=False)

        async def fill():
            await create_topics(kafka, ["prox.refined", "prox.dropped", "prox.dlq"], 4, 1)
            producer = make_producer(kafka, linger_ms=50, max_batch_size=batch_bytes)
            await producer.start()
            futures = [await producer.send("prox.refined", p, key=str(i).encode()) for i, p in enumerate(payloads)]
            await asyncio.gather(*futures)
            await producer.stop()

        asyncio.run(fill())
        shards = workdir / "e2e-shards"
        env = {**os.environ, "PROX_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "PROX_KAFKA_IDEMPOTENT": "false",
               "PROX_HTTP_PORT": str(free_port()), "PROX_SINK_PATH": str(shards), "PROX_SINK_MAX_BYTES": str(SHARD_BYTES),
               "PROX_SINK_MAX_AGE_S": "2", "PROX_SINK_WRITER_ID": "bench"}
        sink = spawn([sys.executable, "-m", "prox.cli.main", "service", "sink"], env=env, log_path=workdir / "sink.log")
        from prox.sink.storage import Storage

        storage = Storage(str(shards), "reader")
        staging = storage.tmp_root / "bench"
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            entries = Manifest(storage).entries()
            rows = sum(e.rows for e in entries)
            if first is None and (entries or staging.exists() and any(staging.iterdir())):
                first = time.perf_counter()  # the first shard is being written: consumption started
            if rows >= len(payloads):
                return {"seconds": time.perf_counter() - (first or time.perf_counter()), "rows": rows,
                        "shards": len(entries), "bytes": sum(e.bytes for e in entries)}
            time.sleep(0.05)
        raise TimeoutError("the sink did not write every row")
    finally:
        if sink is not None and sink.poll() is None:
            sink.send_signal(signal.SIGTERM)
            sink.wait(timeout=60)
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-broker", action="store_true")
    parser.add_argument("--batch-bytes", type=int, default=16384,
                        help="producer batch size filling the topic (aiokafka's default 16 KiB: one ~17 KB page per batch)")
    args = parser.parse_args()
    payloads = messages(args.documents)
    input_mb = sum(map(len, payloads)) / 1e6
    workdir = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    load_start = os.getloadavg()[0]
    core_s, arrow_s = [], []
    try:
        for run in range(args.runs):  # interleaved, best of the runs
            core_s.append(asyncio.run(run_core(payloads, workdir / f"core{run}")))
            arrow_s.append(run_pyarrow(payloads, workdir / f"arrow{run}"))
        out_mb = sum(p.stat().st_size for p in (workdir / "core0").glob("*.parquet")) / 1e6
        e2e = None if args.no_broker else run_end_to_end(payloads, workdir, args.batch_bytes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best_core, best_arrow = min(core_s), min(arrow_s)
    result = {
        "machine": machine(), "load_average": [load_start, os.getloadavg()[0]], "documents": args.documents,
        "input_mb": round(input_mb, 2), "parquet_mb": round(out_mb, 2),
        "sink_core": {"seconds": round(best_core, 3), "rows_per_s": round(args.documents / best_core),
                      "input_mb_per_s": round(input_mb / best_core, 1)},
        "pyarrow_alone": {"seconds": round(best_arrow, 3), "rows_per_s": round(args.documents / best_arrow),
                          "input_mb_per_s": round(input_mb / best_arrow, 1)},
        "ratio_to_pyarrow_time": round(best_core / best_arrow, 2),
    }
    if e2e:
        result["end_to_end"] = {**e2e, "producer_batch_bytes": args.batch_bytes, "rows_per_s": round(e2e["rows"] / e2e["seconds"]),
                                "input_mb_per_s": round(input_mb / e2e["seconds"], 1)}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.batch_bytes == 16384 else f"_batch{args.batch_bytes}"
    (RESULTS / f"sink{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
