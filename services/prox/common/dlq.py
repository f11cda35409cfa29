"""Dead letters: why a message could not be processed, and where it came from.

The value is a JSON `DeadLetter` envelope (the original payload inside, cut to a configured size);
the same facts are repeated as Kafka headers so tools can filter without decoding.
"""
from __future__ import annotations

import base64
import time
from typing import Optional

from prox_proto import DeadLetter, encode_json

from .stage import Output


def _payload_text(payload: bytes, limit: int) -> tuple[str, str, int]:
    """(text, encoding, bytes kept): UTF-8 when the payload is text (a cut never splits a character),
    else base64."""
    cut = payload[:limit]
    # A cut may split a multi-byte character: retry without its last 1-3 bytes before falling back.
    for trim in range(4 if len(cut) < len(payload) else 1):
        try:
            kept = cut[: len(cut) - trim]
            return kept.decode("utf-8"), "utf-8", len(kept)
        except UnicodeDecodeError:
            continue
    return base64.b64encode(cut).decode("ascii"), "base64", len(cut)


def dead_letter(record, *, reason: str, error_class: str, error: str, topic: str, service: str,
                max_payload_bytes: int, doc_id: Optional[str] = None) -> Output:
    payload = record.value or b""
    text, encoding, kept = _payload_text(payload, max_payload_bytes)
    key = record.key.decode("utf-8", "replace") if record.key else None
    letter = DeadLetter(
        reason=reason, error_class=error_class, error=error[:2000], source_topic=record.topic,
        partition=record.partition, offset=record.offset, payload=text, payload_encoding=encoding,
        original_size=len(payload), truncated=kept < len(payload), key=key, id=doc_id or key,
        service=service, time=time.time(),
    )
    headers = [
        ("prox.reason", reason.encode()),
        ("prox.error_class", error_class.encode()),
        ("prox.source_topic", record.topic.encode()),
        ("prox.source_partition", str(record.partition).encode()),
        ("prox.source_offset", str(record.offset).encode()),
        ("prox.original_size", str(len(payload)).encode()),
    ]
    return Output(topic=topic, key=record.key, value=encode_json(letter), headers=headers, outcome="dead_letter",
                  reason=reason)


def original_payload(letter: DeadLetter) -> bytes:
    return base64.b64decode(letter.payload) if letter.payload_encoding == "base64" else letter.payload.encode("utf-8")
