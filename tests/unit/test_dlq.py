"""Dead-letter envelopes: reason, origin, a cut payload, binary payloads restorable."""
from __future__ import annotations

import base64
from types import SimpleNamespace

from prox.common.dlq import dead_letter, original_payload
from prox_proto import DeadLetter, decode_json


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
