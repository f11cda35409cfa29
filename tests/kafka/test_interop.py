"""What users already run against the services: Apache Kafka's own Java console producer and consumer with
every codec, keyed and unkeyed, and `prox topics create` on a cluster that cannot hold three replicas."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.fixtures.scenarios import check_accounted, documents
from tests.helpers import apache_kafka

pytestmark = pytest.mark.kafka

CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.fixture(scope="module", autouse=True)
def java_tools():
    if apache_kafka.problem():
        pytest.skip(f"Kafka's Java console tools: {apache_kafka.problem()}")


async def test_java_console_producer_every_codec_keyed_and_unkeyed_every_id_out_once(kafka_stack, real_kafka):
    sent = []
    for codec in CODECS:
        for keyed in (True, False):
            docs = documents(f"java-{codec}-{'keyed' if keyed else 'unkeyed'}", 12)
            lines = [json.dumps(doc) for doc in docs]
            if keyed:
                lines = [f"{doc['id']}\t{line}" for doc, line in zip(docs, lines)]
            apache_kafka.console_produce(real_kafka.bootstrap_servers, kafka_stack.topics.raw, lines, codec,
                                         key_separator="\t" if keyed else None)
            sent += docs
    if real_kafka.log_dir is not None:
        assert set(CODECS) <= apache_kafka.batch_codecs(real_kafka.log_dir, kafka_stack.topics.raw)
    assert await check_accounted(kafka_stack, sent) == 0  # each id in exactly one output, no duplicate


async def test_java_console_consumer_reads_the_compressed_output_topics(kafka_stack, real_kafka):
    docs = documents("java-reader", 20)
    await kafka_stack.produce(docs)
    found = await kafka_stack.wait_for_outputs([doc["id"] for doc in docs])
    wanted = {doc["id"] for doc in docs}
    records, read = await kafka_stack.records(), {}
    for role in ("refined", "dropped"):
        topic = kafka_stack.topics.name(role)
        values = apache_kafka.console_consume(real_kafka.bootstrap_servers, topic, max_messages=len(records[role]))
        read.update({m["id"]: m for m in map(json.loads, values) if m["id"] in wanted})
        if real_kafka.log_dir is not None and found[role]:
            assert apache_kafka.batch_codecs(real_kafka.log_dir, topic) == {"zstd"}
    assert set(read) == wanted
    for doc_id, message in read.items():
        expected = found["refined"].get(doc_id) or found["dropped"][doc_id]
        assert message["text"] == expected["text"]


def prox_topics(bootstrap: str, names: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROX_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           **{f"PROX_TOPICS_{role.upper()}": name for role, name in names.items()}}
    return subprocess.run([sys.executable, "-m", "prox.cli.main", "topics", "create", "--partitions", "3", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def topic_names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {role: f"t-{tag}.{role}" for role in
            ("raw", "doc_programs", "kept", "chunk_programs", "refined", "dropped", "dlq")}


async def brokers_and_topics(bootstrap: str, names: list[str]) -> tuple[int, list[dict]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"]), await admin.describe_topics(names)
    finally:
        await admin.close()


async def test_topics_create_fits_the_replication_factor_to_the_cluster(real_kafka):
    names = topic_names()
    first = prox_topics(real_kafka.bootstrap_servers, names)
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.split()) == sorted([*names.values(), *["created"] * len(names)])
    brokers, described = await brokers_and_topics(real_kafka.bootstrap_servers, list(names.values()))
    assert {len(t["partitions"]) for t in described} == {3}
    assert {len(p["replicas"]) for t in described for p in t["partitions"]} == {min(3, brokers)}
    again = prox_topics(real_kafka.bootstrap_servers, names)
    assert again.returncode == 0 and again.stdout.split().count("exists") == len(names)


async def test_topics_create_reports_each_refusal_and_exits_non_zero(real_kafka):
    names = topic_names()
    brokers, _ = await brokers_and_topics(real_kafka.bootstrap_servers, [])
    refused = prox_topics(real_kafka.bootstrap_servers, names, "--replication-factor", str(max(3, brokers + 1)))
    assert refused.returncode == 1
    lines = refused.stdout.strip().splitlines()
    assert len(lines) == len(names)
    assert all("\trefused: InvalidReplicationFactorError (38)" in line for line in lines), lines
    assert "refused 7 of 7 topics" in refused.stderr
