"""Pipeline throughput and end-to-end latency, against the raw broker ceiling measured in the same run.

    python benchmarks/bench_pipeline.py [--data PATH] [--docs N] [--partitions 4] [--paced-fraction 0.5]

Two systems, each on its own embedded Tansu broker with the same topics and partition count:
- pipeline: `LocalStack` (model server with the heuristic backends + doc-refiner, executor, chunk-refiner);
- ceiling: the same three processes replaced by plain aiokafka relays (consume, produce the value unchanged
  with the same key, commit every second; consumer settings as the services', PROX_KAFKA_* included): raw → doc-programs → kept → chunk-programs → refined, the same
  four hops, no processing. Every document takes all four hops in the ceiling (the pipeline drops some
  after the first two), so the ceiling is, if anything, pessimistic and the overhead ratio an underestimate.

Each system gets a warm-up, a saturated run (all documents produced at once: throughput = documents /
(last output received - first produced)) and a paced run (documents produced at `--paced-fraction` of the
pipeline's saturated throughput, the same rate for both: latency without a standing queue). Latency is the
collector's receive time minus the message's `ingest_time` (set by the producer). CPU seconds of every
process (children included) are read from /proc over the saturated run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer

import benchtools
from prox.cli.stack import LocalStack, ModelOptions
from prox.common.broker import EmbeddedBroker
from prox.common.config import KafkaSettings, ServiceSettings, kafka_client_options, load_settings
from prox.common.kafka_io import create_topics, make_producer, read_topic, topic_partitions
from prox_proto import RawDocument, encode_json
from prox_proto.topics import Topics

TOPICS = Topics()
HOPS = ((TOPICS.raw, TOPICS.doc_programs), (TOPICS.doc_programs, TOPICS.kept),
        (TOPICS.kept, TOPICS.chunk_programs), (TOPICS.chunk_programs, TOPICS.refined))
# The ceiling's relays mirror the pipeline's processes: the executor relays two hops in one consumer group.
RELAYS = {"doc-relay": HOPS[0:1], "executor-relay": (HOPS[1], HOPS[3]), "chunk-relay": HOPS[2:3]}
OUTPUT_TOPICS = (TOPICS.refined, TOPICS.dropped, TOPICS.dlq)
WARMUP_DOCS = 20


class _Stamp(msgspec.Struct):
    """What the collector needs from any output message (refined, dropped, dead letter, relayed raw)."""

    id: str | None = None
    ingest_time: float | None = None


# --- the ceiling's relay (runs as a child process) -------------------------------------------
async def relay(bootstrap: str, group: str, routes: dict[str, str], batch_size: int, fetch_max_wait_ms: int) -> None:
    options = kafka_client_options(KafkaSettings(bootstrap_servers=bootstrap, idempotent=False))
    settings = ServiceSettings()
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap, idempotent=False), linger_ms=5)
    consumer = AIOKafkaConsumer(
        *routes, **options, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=batch_size, fetch_max_wait_ms=fetch_max_wait_ms,
        fetch_max_bytes=max(52_428_800, settings.max_message_bytes * 4),
        max_partition_fetch_bytes=max(1_048_576, 2 * settings.max_message_bytes + 65_536),
    )
    await producer.start()
    await consumer.start()
    last_commit = time.monotonic()
    while True:
        batch = await consumer.getmany(timeout_ms=200, max_records=batch_size)
        records = [record for tp_records in batch.values() for record in tp_records]
        futures = [await producer.send(routes[r.topic], r.value, key=r.key) for r in records]
        await asyncio.gather(*futures)
        if time.monotonic() - last_commit >= 1.0:
            await consumer.commit()
            last_commit = time.monotonic()


def start_relays(bootstrap: str, logs: Path) -> dict[str, subprocess.Popen]:
    processes = {}
    for name, hops in RELAYS.items():
        routes = [f"{source}={target}" for source, target in hops]
        command = [sys.executable, __file__, "relay", "--bootstrap", bootstrap, "--group", f"bench-{name}",
                   "--fetch-max-wait-ms", str(load_settings().kafka.fetch_max_wait_ms), *routes]
        with open(logs / f"{name}.log", "ab") as log:
            processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return processes


def stop_processes(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- producing and collecting ----------------------------------------------------------------
class Collector:
    """Reads the output topics from their current end; records each document's first arrival."""

    def __init__(self, kafka: KafkaSettings):
        self.consumer = AIOKafkaConsumer(**kafka_client_options(kafka), enable_auto_commit=False, group_id=None,
                                         fetch_max_bytes=52_428_800, max_partition_fetch_bytes=16_777_216)
        self.arrivals: dict[str, tuple[float, float, str]] = {}  # id -> (received, ingest_time, topic)
        self.decoder = msgspec.json.Decoder(_Stamp)
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = await topic_partitions(self.consumer, OUTPUT_TOPICS)
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the positions now, before anything is produced
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            received = time.time()
            for records in batch.values():
                for record in records:
                    stamp = self.decoder.decode(record.value)
                    doc_id = stamp.id or (record.key.decode() if record.key else "")
                    self.arrivals.setdefault(doc_id, (received, stamp.ingest_time or 0.0, record.topic))

    async def wait_for(self, ids: list[str], timeout_s: float, check=lambda: None) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(doc_id in self.arrivals for doc_id in ids):
            check()
            if time.monotonic() > deadline:
                missing = sum(doc_id not in self.arrivals for doc_id in ids)
                raise TimeoutError(f"{missing} of {len(ids)} documents never came out")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.task.cancel()
        await self.consumer.stop()


def documents(pages: list[dict], run: str) -> list[dict]:
    return [{"id": f"{run}-{page['id']}", "text": page["text"], "url": page["url"]} for page in pages]


async def produce(producer, docs: list[dict], rate_per_s: float | None) -> float:
    """Send each document with its ingest time; paced at `rate_per_s` when given. Returns the first send time."""
    started, futures = time.time(), []
    for index, doc in enumerate(docs):
        if rate_per_s:
            delay = started + index / rate_per_s - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        raw = RawDocument(**doc, ingest_time=time.time())
        futures.append(await producer.send(TOPICS.raw, encode_json(raw), key=raw.id.encode()))
    await asyncio.gather(*futures)
    return started


def run_summary(collector: Collector, docs: list[dict], started: float, words: int) -> dict:
    arrivals = [collector.arrivals[doc["id"]] for doc in docs]
    elapsed = max(received for received, _, _ in arrivals) - started
    latencies = [received - ingest for received, ingest, _ in arrivals if ingest]  # dead letters carry none
    outcomes = {topic: sum(arrival[2] == topic for arrival in arrivals) for topic in OUTPUT_TOPICS}
    return {
        "outputs_by_topic": outcomes,
        "documents": len(docs), "seconds": round(elapsed, 3),
        "documents_per_s": round(len(docs) / elapsed, 1), "words_per_s": round(words / elapsed),
        "latency_p50_s": round(benchtools.percentile(latencies, 0.5), 4),
        "latency_p99_s": round(benchtools.percentile(latencies, 0.99), 4),
    }


async def measure_system(kafka: KafkaSettings, pages: list[dict], label: str, pids: dict[str, int],
                         paced_rate, check, timeout_s: float) -> dict:
    """Warm-up, saturated run (with CPU accounting), then a paced run at `paced_rate()` documents/s."""
    collector, producer = Collector(kafka), make_producer(kafka)
    await collector.start()
    await producer.start()
    try:
        warmup = documents(pages[:WARMUP_DOCS], f"{label}-warmup")
        await produce(producer, warmup, None)
        await collector.wait_for([d["id"] for d in warmup], timeout_s, check)
        words = sum(len(page["text"].split()) for page in pages)

        saturated_docs = documents(pages, f"{label}-saturated")
        cpu_before, cpu_started = benchtools.cpu_snapshot(pids), time.process_time()
        started = await produce(producer, saturated_docs, None)
        await collector.wait_for([d["id"] for d in saturated_docs], timeout_s, check)
        cpu = {**benchtools.cpu_delta(cpu_before, benchtools.cpu_snapshot(pids)),
               "benchmark producer + collector": round(time.process_time() - cpu_started, 3)}
        saturated = run_summary(collector, saturated_docs, started, words)
        saturated["cpu_seconds"] = cpu
        saturated["cpu_seconds_per_document"] = {name: round(s / len(pages), 6) for name, s in cpu.items()}

        rate = paced_rate(saturated)
        paced_docs = documents(pages, f"{label}-paced")
        started = await produce(producer, paced_docs, rate)
        await collector.wait_for([d["id"] for d in paced_docs], timeout_s, check)
        paced = {"offered_documents_per_s": round(rate, 1), **run_summary(collector, paced_docs, started, words)}
        return {"saturated": saturated, "paced": paced}
    finally:
        await producer.stop()
        await collector.stop()


# --- the two systems -------------------------------------------------------------------------
async def measure_pipeline(pages, workdir: Path, partitions: int, fraction: float, timeout_s: float) -> dict:
    stack = LocalStack(workdir / "pipeline", ModelOptions(), partitions=partitions)
    try:
        await stack.start()
        await stack.wait_ready(timeout_s=300)
        pids = {name: child.process.pid for name, child in stack.children.items()}
        pids["broker (tansu)"] = stack.broker.process.pid
        result = await measure_system(stack.kafka_settings(), pages, "pipeline", pids,
                                      lambda saturated: fraction * saturated["documents_per_s"], stack.check, timeout_s)
        result["message_bytes"] = await message_sizes(stack.kafka_settings())
        return result
    finally:
        stack.stop()


async def measure_ceiling(pages, workdir: Path, partitions: int, paced_rate: float, timeout_s: float) -> dict:
    logs = workdir / "ceiling"
    logs.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=logs / "broker.log").start()
    relays: dict[str, subprocess.Popen] = {}
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, idempotent=False)
        await create_topics(kafka, TOPICS.all(), partitions, 1)
        relays = start_relays(broker.bootstrap_servers, logs)
        pids = {**{name: process.pid for name, process in relays.items()}, "broker (tansu)": broker.process.pid}

        def check() -> None:
            dead = [name for name, process in relays.items() if process.poll() is not None]
            if dead or not broker.alive():
                raise RuntimeError(f"ceiling processes exited: {dead or ['broker']}; logs in {logs}")

        return await measure_system(kafka, pages, "ceiling", pids, lambda _saturated: paced_rate, check, timeout_s)
    finally:
        stop_processes(relays)
        broker.stop()


async def message_sizes(kafka: KafkaSettings) -> dict:
    """Mean value bytes and message count per topic, over everything the pipeline wrote."""
    sizes = {}
    for topic in TOPICS.all():
        values = [len(record.value or b"") async for record in read_topic(kafka, topic)]
        sizes[topic] = {"messages": len(values), "mean_bytes": round(sum(values) / len(values)) if values else 0}
    return sizes


# --- reporting -------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    pipeline, ceiling = result["pipeline"], result["ceiling"]
    lines = [
        "# Pipeline benchmark", "",
        f"Machine: {m['cpu']}, nproc {m['nproc']}, {m['memory_gib']} GiB; Python {v['python']}, aiokafka "
        f"{v['aiokafka']}, msgspec {v['msgspec']}, tritonclient {v['tritonclient']}, torch {v['torch']}, broker "
        f"{v['tansu_binary']} (embedded Tansu, memory only). Load average {m['load_average_1m']} at the end.", "",
        f"{result['documents']} WCXB pages ({result['words_per_document']} words, {result['chars_per_document']} "
        f"characters per page on average), {result['partitions']} partitions, heuristic backends, every process "
        "on the same machine.", "",
        "| system | run | docs/s | words/s | p50 latency s | p99 latency s |", "|---|---|---|---|---|---|",
    ]
    for name, system in (("pipeline (3 services + Triton)", pipeline), ("raw broker ceiling (4 relay hops)", ceiling)):
        for run in ("saturated", "paced"):
            r = system[run]
            label = run if run == "saturated" else f"paced at {r['offered_documents_per_s']} docs/s"
            lines.append(f"| {name} | {label} | {r['documents_per_s']:,} | {r['words_per_s']:,} | "
                         f"{r['latency_p50_s']} | {r['latency_p99_s']} |")
    lines += ["", f"**Pipeline overhead: the ceiling moves {result['overhead_ratio']}x the pipeline's documents/s** "
              "(saturated throughput, same run, same machine).", "",
              "CPU seconds per document over the saturated run (process and its children, from /proc):", "",
              "| process | pipeline | ceiling |", "|---|---|---|"]
    for name in sorted(set(pipeline["saturated"]["cpu_seconds_per_document"]) | set(ceiling["saturated"]["cpu_seconds_per_document"])):
        cells = [system["saturated"]["cpu_seconds_per_document"].get(name) for system in (pipeline, ceiling)]
        lines.append(f"| {name} | " + " | ".join("" if c is None else f"{c * 1000:.2f} ms" for c in cells) + " |")
    lines += ["", "Mean message sizes (pipeline run): " + ", ".join(
        f"{topic} {s['mean_bytes']:,} B" for topic, s in pipeline["message_bytes"].items() if s["messages"]), ""]
    return "\n".join(lines)


async def benchmark(args) -> dict:
    pages = benchtools.load_pages(args.data, args.docs)
    with tempfile.TemporaryDirectory(prefix="prox-bench-") as tmp:
        pipeline = await measure_pipeline(pages, Path(tmp), args.partitions, args.paced_fraction, args.timeout)
        paced_rate = pipeline["paced"]["offered_documents_per_s"]
        ceiling = await measure_ceiling(pages, Path(tmp), args.partitions, paced_rate, args.timeout)
    return {
        "data": str(args.data), "documents": len(pages), "partitions": args.partitions,
        "words_per_document": round(sum(len(p["text"].split()) for p in pages) / len(pages), 1),
        "chars_per_document": round(sum(len(p["text"]) for p in pages) / len(pages), 1),
        "pipeline": pipeline, "ceiling": ceiling,
        "overhead_ratio": round(ceiling["saturated"]["documents_per_s"] / pipeline["saturated"]["documents_per_s"], 2),
        "versions": benchtools.versions(), "machine": benchtools.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        return relay_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=benchtools.default_data())
    parser.add_argument("--docs", type=int, default=None, help="pages to use (default: all)")
    parser.add_argument("--partitions", type=int, default=4, help="as `prox local`")
    parser.add_argument("--paced-fraction", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one run's outputs")
    parser.add_argument("--name", default="pipeline")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = asyncio.run(benchmark(args))
    text = markdown(result)
    benchtools.write_results(args.name, result, text)
    print(text)
    return 0


def relay_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_pipeline.py relay")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch-size", type=int, default=ServiceSettings().batch_size)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=ServiceSettings().kafka.fetch_max_wait_ms)
    parser.add_argument("routes", nargs="+", help="SOURCE=TARGET topic pairs")
    args = parser.parse_args(argv)
    routes = dict(route.split("=", 1) for route in args.routes)
    try:
        asyncio.run(relay(args.bootstrap, args.group, routes, args.batch_size, args.fetch_max_wait_ms))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
