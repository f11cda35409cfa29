"""Every message on every topic, as msgspec structs.

Producer- and consumer-facing topics (raw, refined, dropped, dead-letter) carry JSON; the internal
topics between services carry msgpack. Every message has an optional version field `v`.
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Union

import msgspec

from .report import ExecutionReport

SCHEMA_VERSION = 1


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Which refining model wrote a program (Triton model name/version and the backend behind it)."""

    name: str
    version: str = "1"
    backend: str = ""


# A producer's id: a string, or an integer that the pipeline carries as its decimal string (`canonical_id`).
InputId = Union[str, int]


class RawDocument(msgspec.Struct, kw_only=True):
    """What a crawl producer sends: at least `{"text": ...}`."""

    text: str
    id: Optional[InputId] = None
    url: Optional[str] = None
    source: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    ingest_time: Optional[float] = None  # seconds since the epoch; the broker timestamp when absent
    v: int = SCHEMA_VERSION


class _Document(msgspec.Struct, kw_only=True):
    """Fields carried along the whole pipeline (provenance included)."""

    id: str
    text: str
    url: Optional[str] = None
    source: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    ingest_time: float = 0.0
    timings: dict[str, float] = {}
    v: int = SCHEMA_VERSION


class DocProgram(_Document, kw_only=True):
    """doc-refiner → executor: the doc-level program written for one document."""

    doc_program: str
    keep_prob: Optional[float] = None
    doc_model: Optional[ModelInfo] = None


class KeptDocument(DocProgram, kw_only=True):
    """executor → chunk-refiner: a document whose doc program kept it."""


class ChunkProgram(KeptDocument, kw_only=True):
    """chunk-refiner → executor: the whole-document chunk program (global line numbers)."""

    chunk_program: str
    chunk_ranges: list[tuple[int, int]] = []
    chunk_model: Optional[ModelInfo] = None


class RefinedDocument(msgspec.Struct, kw_only=True):
    """The output, on the refined topic (`dropped` false) and on the dropped topic (text null)."""

    id: str
    text: Optional[str]
    dropped: bool
    url: Optional[str] = None
    source: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    ingest_time: float = 0.0
    doc_program: Optional[str] = None
    chunk_program: Optional[str] = None
    keep_prob: Optional[float] = None
    chunk_ranges: list[tuple[int, int]] = []
    report: Optional[ExecutionReport] = None
    models: list[ModelInfo] = []
    timings: dict[str, float] = {}
    v: int = SCHEMA_VERSION


class DeadLetter(msgspec.Struct, kw_only=True):
    """A message no stage could process, with why and where it came from.

    `payload` is the original message value (UTF-8 text, or base64 when it is not valid UTF-8),
    cut to the configured size; `original_size` is the size before the cut.
    """

    reason: str
    error_class: str
    error: str
    source_topic: str
    partition: int
    offset: int
    payload: str
    payload_encoding: str = "utf-8"  # or "base64"
    original_size: int = 0
    truncated: bool = False
    key: Optional[str] = None
    id: Optional[str] = None
    service: str = ""
    time: float = 0.0
    v: int = SCHEMA_VERSION


def canonical_id(value: object) -> str:
    """The document id of an input id: a string as it is, an integer as its decimal string; anything else
    (a float, a list, an object, a boolean) is refused, since no one spelling of it would be the right one."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"id must be a string or an integer, not {type(value).__name__} {value!r:.80}")


def document_id(text: str) -> str:
    """The id of a document sent without one: hex sha256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
