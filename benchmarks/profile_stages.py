"""Per-stage CPU profile: where each service's CPU time goes, by category and by function.

    python benchmarks/profile_stages.py [--data PATH] [--docs N] [--top 8]

An embedded broker and `prox model-server` (heuristic backends) run as child processes. The raw topic is
filled with the pages first; then each stage runs in this process as the real `StreamService` under
cProfile (CPU clock, so waiting costs nothing) until it has handled its whole input, in pipeline order:
doc-refiner, executor (doc programs), chunk-refiner, executor (chunk programs). The model is profiled
in-process too (the heuristic writers on the same pages, in batches of the server's max batch size); what
the model server spends beyond that is Triton/PyTriton overhead, visible in the pipeline benchmark's CPU
table. cProfile sees the event-loop thread only and inflates small Python calls: use the shares, not the
absolute times, and the pipeline benchmark for CPU seconds per document.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import benchtools
from prox.common.broker import EmbeddedBroker, free_port
from prox.common.config import KafkaSettings, ServiceSettings
from prox.common.kafka_io import create_topics, make_producer
from prox.common.runtime import StreamService
from prox.refiners.triton_client import TritonRefinerClient
from prox_proto import RawDocument, encode_json
from prox_proto.topics import Topics

TOPICS = Topics()
SERVER_MAX_BATCH = 32  # `prox model-server --triton-max-batch-size` default
# First match wins: (category, substrings of the profiled function's file or builtin name).
CATEGORIES = (
    ("serialisation (msgspec, prox_proto, json)", ("msgspec", "prox_proto", "/json/")),
    ("Kafka client (aiokafka)", ("aiokafka", "/kafka/")),
    ("Triton client (tritonclient, grpc, protobuf)", ("tritonclient", "grpc", "protobuf", "prox/refiners/triton_client")),
    ("executor (prox.executor)", ("prox/executor",)),
    ("model (heuristic writers, numpy)", ("prox/models/heuristic", "numpy")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("socket syscalls", ("socket", "select.epoll")),
    ("asyncio event loop", ("asyncio", "selectors")),
    ("service runtime (prox.common, prox.refiners)", ("prox/common", "prox/refiners")),
)


class CountingStage:
    """Delegates to a stage and counts the records it has processed."""

    def __init__(self, stage):
        self.stage, self.name, self.accepts, self.processed = stage, stage.name, stage.accepts, 0

    async def start(self):
        await self.stage.start()

    def ready(self):
        return self.stage.ready()

    async def close(self):
        await self.stage.close()

    async def process(self, records):
        results = await self.stage.process(records)
        self.processed += len(records)
        return results


def category(function: tuple) -> str:
    filename, _, name = function
    where = f"{filename} {name}"
    return next((label for label, needles in CATEGORIES if any(n in where for n in needles)), "other")


def _attributed(function: tuple, tottime: float, callers: dict) -> list[tuple[str, float]]:
    """A builtin (len, str.split ...) that matches no category counts for its callers, pro rata."""
    label = category(function)
    if label != "other" or function[0] != "~" or not callers:
        return [(label, tottime)]
    edge_time = {caller: edge[2] for caller, edge in callers.items()}
    total = sum(edge_time.values())
    if total <= 0:
        return [(label, tottime)]
    return [(category(caller), tottime * seconds / total) for caller, seconds in edge_time.items()]


def summarise(stats: pstats.Stats, documents: int, top: int) -> dict:
    """CPU by category (exclusive time) and the top functions, per document."""
    by_category: dict[str, float] = {}
    rows = []
    for function, (_, calls, tottime, _, callers) in stats.stats.items():
        for label, seconds in _attributed(function, tottime, callers):
            by_category[label] = by_category.get(label, 0.0) + seconds
        rows.append((tottime, calls, function))
    total = sum(by_category.values()) or 1e-9
    rows.sort(reverse=True)
    return {
        "documents": documents, "profiled_cpu_s": round(total, 3),
        "profiled_cpu_ms_per_document": round(1000 * total / max(documents, 1), 3),
        "categories": {label: {"share": round(seconds / total, 3), "ms_per_document": round(1000 * seconds / max(documents, 1), 3)}
                       for label, seconds in sorted(by_category.items(), key=lambda item: -item[1])},
        "top_functions": [{"function": _describe(function), "calls": calls, "share": round(tottime / total, 3)}
                          for tottime, calls, function in rows[:top]],
    }


def _describe(function: tuple) -> str:
    filename, line, name = function
    if filename == "~":
        return name
    parts = Path(filename).parts
    return f"{'/'.join(parts[-3:])}:{line}({name})"


async def total_messages(kafka: KafkaSettings, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer

    from prox.common.kafka_io import topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        return sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await consumer.stop()


async def profile_stage(stage, settings: ServiceSettings, expected: int) -> pstats.Stats:
    counting = CountingStage(stage)
    service = StreamService(counting, settings)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    task = asyncio.create_task(service.run())
    while counting.processed < expected or service.tracker.in_flight():
        if task.done():
            task.result()  # raises what stopped the service
        await asyncio.sleep(0.02)
    service.request_stop()
    await task
    profiler.disable()
    return pstats.Stats(profiler)


def stage_settings(stage_type, kafka: KafkaSettings, triton_url: str):
    """The stage's own settings type (refiners: with the Triton client's URL)."""
    from prox.cli.service import settings_type

    name = stage_type.name
    settings = settings_type(name)(kafka=kafka, http_port=free_port())
    if hasattr(settings, "triton"):
        settings.triton.url = triton_url
    return settings


async def profile_services(pages: list[dict], kafka: KafkaSettings, triton_url: str, top: int) -> dict:
    from prox.executor.service import ExecutorStage
    from prox.refiners.chunk_refiner import ChunkRefiner
    from prox.refiners.doc_refiner import DocRefiner

    await create_topics(kafka, TOPICS.all(), 4, 1)
    producer = make_producer(kafka)
    await producer.start()
    for page in pages:
        raw = RawDocument(**page, ingest_time=time.time())
        await producer.send(TOPICS.raw, encode_json(raw), key=raw.id.encode())
    await producer.flush()
    await producer.stop()
    order = (("doc-refiner", DocRefiner, TOPICS.raw), ("executor (doc programs)", ExecutorStage, TOPICS.doc_programs),
             ("chunk-refiner", ChunkRefiner, TOPICS.kept), ("executor (chunk programs)", ExecutorStage, TOPICS.chunk_programs))
    results = {}
    for label, stage_type, input_topic in order:
        expected = await total_messages(kafka, input_topic)
        settings = stage_settings(stage_type, kafka, triton_url)
        stats = await profile_stage(stage_type(settings), settings, expected)
        results[label] = summarise(stats, expected, top)
        print(f"profiled {label}: {expected} messages", file=sys.stderr)
    return results


def profile_model(pages: list[dict], kept_fraction: float, top: int) -> dict:
    from prox.models.backends import load_chunk_writer, load_doc_writer

    doc_writer, chunk_writer = load_doc_writer("heuristic"), load_chunk_writer("heuristic")
    texts = [page["text"] for page in pages]
    results = {}
    for label, writer, level_texts in (("model: heuristic doc writer", doc_writer, texts),
                                       ("model: heuristic chunk writer", chunk_writer, texts[:round(kept_fraction * len(texts))])):
        def write_all() -> None:
            for start in range(0, len(level_texts), SERVER_MAX_BATCH):
                writer.write(level_texts[start:start + SERVER_MAX_BATCH])

        cpu_started = time.process_time()
        write_all()  # unprofiled: the model's real CPU cost per document
        unprofiled_ms = 1000 * (time.process_time() - cpu_started) / max(1, len(level_texts))
        profiler = cProfile.Profile(time.process_time)
        profiler.runcall(write_all)
        results[label] = {"unprofiled_cpu_ms_per_document": round(unprofiled_ms, 3),
                          **summarise(pstats.Stats(profiler), len(level_texts), top)}
    return results


async def wait_for_triton(url: str, timeout_s: float) -> None:
    async with TritonRefinerClient(url=url) as client:
        await client.wait_ready(timeout_s=timeout_s)


async def profile_all(args) -> dict:
    pages = benchtools.load_pages(args.data, args.docs)
    with tempfile.TemporaryDirectory(prefix="prox-profile-") as tmp:
        broker = EmbeddedBroker(log_path=Path(tmp, "broker.log")).start()
        server, triton_url = benchtools.start_model_server(Path(tmp, "model-server.log"))
        try:
            await wait_for_triton(triton_url, 300)
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, idempotent=False)
            stages = await profile_services(pages, kafka, triton_url, args.top)
        finally:
            server.terminate()
            server.wait(timeout=30)
            broker.stop()
    kept_fraction = stages["chunk-refiner"]["documents"] / max(1, stages["doc-refiner"]["documents"])
    stages.update(profile_model(pages, kept_fraction, args.top))
    return {"documents": len(pages), "data": str(args.data), "stages": stages,
            "machine": benchtools.machine(), "versions": benchtools.versions()}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Per-stage CPU profile", "",
             f"{result['documents']} WCXB pages; cProfile (CPU clock) of each stage in-process; {m['cpu']}, "
             f"nproc {m['nproc']}. Shares of the profiled CPU time (exclusive time per function); absolute "
             "times are inflated by the profiler (use `pipeline.md` for CPU per document).", ""]
    for label, stage in result["stages"].items():
        unprofiled = (f", {stage['unprofiled_cpu_ms_per_document']} ms without the profiler"
                      if "unprofiled_cpu_ms_per_document" in stage else "")
        lines += [f"## {label} ({stage['documents']} documents, {stage['profiled_cpu_ms_per_document']} ms "
                  f"profiled CPU per document{unprofiled})", "", "| category | share |", "|---|---|"]
        lines += [f"| {name} | {c['share']:.0%} |" for name, c in stage["categories"].items() if c["share"] >= 0.005]
        lines += ["", "Top functions: " + "; ".join(f"`{f['function']}` {f['share']:.0%}" for f in stage["top_functions"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=benchtools.default_data())
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--name", default="profile")
    args = parser.parse_args(argv)
    result = asyncio.run(profile_all(args))
    text = markdown(result)
    benchtools.write_results(args.name, result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
