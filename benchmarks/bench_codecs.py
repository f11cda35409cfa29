"""Which codec the project's producers use: bytes per document on the broker, produce and consume docs/s.

Every codec a Kafka producer can use (none, gzip, snappy, lz4, zstd), on Apache Kafka (the real broker, from
the Maven jars, log sizes read from its log directory) and, for acceptance only, the embedded Tansu broker.
The messages are what the services write: refined documents (JSON, the output topics) and doc programs
(msgpack, the internal topics), built from real WCXB pages; the producer has the services' options
(`prox.common.kafka_io.producer_options`) with the batch sizes below.

    python benchmarks/bench_codecs.py [--documents 2000]  →  benchmarks/results/codecs.{json,md}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchtools import RESULTS, default_data, load_pages, machine  # noqa: E402

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from prox.common.broker import EmbeddedBroker  # noqa: E402
from prox.common.config import KafkaSettings, kafka_client_options  # noqa: E402
from prox.common.kafka_io import create_topics, producer_options, topic_partitions  # noqa: E402
from prox_proto import DocProgram, RefinedDocument, encode_json, encode_msgpack  # noqa: E402
from tests.helpers import apache_kafka  # noqa: E402

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
BATCH_BYTES = (16_384, 1_048_576)  # aiokafka's default max_batch_size, and the services' (see kafka_io)


def messages(pages: list[dict], count: int) -> dict[str, list[bytes]]:
    chosen = [pages[i % len(pages)] for i in range(count)]
    return {
        "refined_json": [encode_json(RefinedDocument(id=f"d{i}", text=p["text"], dropped=False, url=p.get("url"),
                                                     doc_program="keep_doc()", chunk_program="keep_chunk()"))
                         for i, p in enumerate(chosen)],
        "doc_program_msgpack": [encode_msgpack(DocProgram(id=f"d{i}", text=p["text"], url=p.get("url"),
                                                          doc_program="keep_doc()", keep_prob=0.9))
                                for i, p in enumerate(chosen)],
    }


async def produce(bootstrap: str, topic: str, values: list[bytes], codec: str, batch_bytes: int,
                  idempotent: bool) -> float:
    kafka = KafkaSettings(bootstrap_servers=bootstrap, idempotent=idempotent, compression_type=codec)
    options = {**producer_options(kafka), "max_batch_size": batch_bytes}
    producer = AIOKafkaProducer(**kafka_client_options(kafka), **options)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=str(i).encode()) for i, value in enumerate(values)]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> tuple[float, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", fetch_max_bytes=52_428_800)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, started = 0, time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            seen += sum(len(records) for records in batch.values())
            if time.perf_counter() - started > 120:
                break
        return time.perf_counter() - started, seen
    finally:
        await consumer.stop()


def log_bytes(log_dir: Path, topic: str) -> int:
    return sum(f.stat().st_size for d in log_dir.glob(f"{topic}-*") for f in d.glob("*.log"))


async def run_apache(values: dict[str, list[bytes]], home: Path) -> list[dict]:
    broker = apache_kafka.ApacheKafka(home).start()
    rows = []
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        for kind, payloads in values.items():
            for batch_bytes in BATCH_BYTES:
                for codec in CODECS:
                    topic = f"bench-{kind}-{codec}-{batch_bytes}".replace("_", "-")
                    await create_topics(kafka, [topic], 4, 1)
                    produce_s = await produce(broker.bootstrap_servers, topic, payloads, codec, batch_bytes, True)
                    consume_s, seen = await consume(broker.bootstrap_servers, topic, len(payloads))
                    await asyncio.sleep(0.5)  # the broker appends asynchronously to its page cache; sizes settle
                    stored = log_bytes(broker.log_dir, topic)
                    rows.append({"broker": "apache-kafka", "messages": kind, "codec": codec,
                                 "max_batch_bytes": batch_bytes, "documents": len(payloads), "read_back": seen,
                                 "payload_bytes_per_doc": round(sum(map(len, payloads)) / len(payloads)),
                                 "broker_bytes_per_doc": round(stored / len(payloads)),
                                 "produce_docs_per_s": round(len(payloads) / produce_s),
                                 "consume_docs_per_s": round(seen / consume_s)})
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        broker.stop()
    return rows


async def run_tansu(values: list[bytes], home: Path) -> list[dict]:
    """Whether the embedded broker stores and returns each codec's batches (it has no log files to size)."""
    rows = []
    with EmbeddedBroker(log_path=home / "tansu.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, idempotent=False)
        for codec in CODECS:
            topic = f"bench-tansu-{codec}"
            await create_topics(kafka, [topic], 4, 1)
            produce_s = await produce(broker.bootstrap_servers, topic, values, codec, BATCH_BYTES[1], False)
            consume_s, seen = await consume(broker.bootstrap_servers, topic, len(values))
            rows.append({"broker": "tansu", "codec": codec, "documents": len(values), "read_back": seen,
                         "produce_docs_per_s": round(len(values) / produce_s),
                         "consume_docs_per_s": round(seen / max(consume_s, 1e-9))})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(result: dict) -> str:
    lines = ["# Producer codecs: bytes per document on the broker and docs/s", "",
             f"Machine: {result['machine']['cpu']}, {result['machine']['nproc']} cores, load "
             f"{result['machine']['load_average_1m']}. {result['documents']} documents per run (real WCXB pages), "
             "one run each; Apache Kafka 3.9.1 from the Maven jars, 4 partitions, the services' producer options.",
             "", "| messages | max batch | codec | payload B/doc | broker B/doc | ratio | produce docs/s | consume docs/s |",
             "|---|---|---|---|---|---|---|---|"]
    baseline = {(r["messages"], r["max_batch_bytes"]): r["broker_bytes_per_doc"] for r in result["apache_kafka"]
                if r["codec"] == "none"}
    for r in result["apache_kafka"]:
        ratio = r["broker_bytes_per_doc"] / baseline[(r["messages"], r["max_batch_bytes"])]
        lines.append(f"| {r['messages']} | {r['max_batch_bytes']:,} | {r['codec']} | {r['payload_bytes_per_doc']:,} | "
                     f"{r['broker_bytes_per_doc']:,} | {ratio:.2f} | {r['produce_docs_per_s']:,} | "
                     f"{r['consume_docs_per_s']:,} |")
    lines += ["", "The embedded Tansu broker (acceptance only: it keeps batches in memory, so no sizes):", "",
              "| codec | read back | produce docs/s | consume docs/s |", "|---|---|---|---|"]
    lines += [f"| {r['codec']} | {r['read_back']} / {r['documents']} | {r['produce_docs_per_s']:,} | "
              f"{r['consume_docs_per_s']:,} |" for r in result["tansu"]]
    return "\n".join(lines) + "\n"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2000)
    args = parser.parse_args(argv)
    problem = apache_kafka.problem()
    if problem:
        print(f"bench_codecs: {problem}", file=sys.stderr)
        return 2
    values = messages(load_pages(default_data()), args.documents)
    with tempfile.TemporaryDirectory(prefix="prox-bench-codecs-") as home:
        result = {"documents": args.documents, "machine": machine(),
                  "apache_kafka": await run_apache(values, Path(home) / "kafka"),
                  "tansu": await run_tansu(values["refined_json"], Path(home))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "codecs.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "codecs.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
