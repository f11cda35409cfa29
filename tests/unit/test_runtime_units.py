"""Commit tracking, settings precedence and dead-letter envelopes."""
from __future__ import annotations

import argparse
import base64
from types import SimpleNamespace

import pytest

from prox.common.config import add_settings_arguments, load_settings
from prox.common.dlq import dead_letter, original_payload
from prox.common.offsets import OffsetTracker
from prox_proto import DeadLetter, decode_json


def test_only_the_contiguous_prefix_of_completed_offsets_is_committable():
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.add("p0", offset)
    tracker.complete("p0", 12)
    assert tracker.committable() == {}
    tracker.complete("p0", 10)
    assert tracker.committable() == {"p0": 11}
    tracker.mark_committed({"p0": 11})
    assert tracker.committable() == {}
    tracker.complete("p0", 11)
    assert tracker.committable() == {"p0": 13}
    assert tracker.in_flight() == 1
    tracker.forget(["p0"])
    tracker.complete("p0", 13)  # late completion of a revoked partition is ignored
    assert tracker.committable() == {}


def test_settings_precedence_flags_over_env_over_yaml(tmp_path):
    config = tmp_path / "prox.yaml"
    config.write_text("kafka:\n  bootstrap_servers: yaml:9092\n  security_protocol: SASL_SSL\nbatch_size: 7\n"
                      "topics:\n  raw: crawl.raw\n")
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    args = parser.parse_args(["--config", str(config), "--batch-size", "9"])
    env = {"PROX_KAFKA_BOOTSTRAP_SERVERS": "env:9092", "PROX_BATCH_SIZE": "8", "PROX_KAFKA_IDEMPOTENT": "false"}
    settings = load_settings(args, environ=env)
    assert settings.kafka.bootstrap_servers == "env:9092"
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.batch_size == 9
    assert settings.kafka.idempotent is False
    assert settings.topics.raw == "crawl.raw" and settings.topics.refined == "prox.refined"


def test_invalid_settings_fail_clearly():
    with pytest.raises(SystemExit, match="invalid settings"):
        load_settings(None, environ={"PROX_BATCH_SIZE": "many"})


def record(value: bytes):
    return SimpleNamespace(value=value, key=b"doc-1", topic="prox.raw", partition=3, offset=42)


def test_dead_letter_carries_reason_origin_and_a_cut_payload():
    payload = ("é" * 100).encode()  # 200 bytes of two-byte characters
    output = dead_letter(record(payload), reason="oversize", error_class="MessageTooLarge", error="too big",
                         topic="prox.dlq", service="doc-refiner", max_payload_bytes=51)
    letter = decode_json(output.value, DeadLetter)
    assert (letter.reason, letter.source_topic, letter.partition, letter.offset) == ("oversize", "prox.raw", 3, 42)
    assert letter.payload == "é" * 25 and letter.truncated and letter.original_size == 200
    headers = dict(output.headers)
    assert headers["prox.reason"] == b"oversize" and headers["prox.source_offset"] == b"42"


def test_binary_payload_is_base64_and_restorable():
    payload = b"\xc1\xff\x00binary"
    output = dead_letter(record(payload), reason="undecodable", error_class="DecodeError", error="x",
                         topic="prox.dlq", service="executor", max_payload_bytes=1000)
    letter = decode_json(output.value, DeadLetter)
    assert letter.payload_encoding == "base64" and base64.b64decode(letter.payload) == payload
    assert original_payload(letter) == payload and not letter.truncated
