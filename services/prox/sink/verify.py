"""Read published shards back and check them against their manifest (tests, `wait_for_shards`, audits)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections import Counter
from typing import Optional

import pyarrow.parquet as pq

from .manifest import ManifestEntry
from .storage import Storage


def read_rows(storage: Storage, entry: ManifestEntry) -> list[dict]:
    return _rows(_read(storage, entry), entry.format)


def entry_ids(storage: Storage, entry: ManifestEntry) -> list[str]:
    """The ids of one published shard (only the id column is read)."""
    return [row["id"] for row in _rows(_read(storage, entry), entry.format, columns=["id"])]


def shard_ids(storage: Storage, entries: list[ManifestEntry]) -> Counter:
    """id -> how many published rows carry it. A listed shard not renamed into place yet (the moment
    between its manifest line and its rename, or a crash there until the sink's next start) is skipped."""
    counts: Counter = Counter()
    for entry in entries:
        if storage.exists(entry.file):
            counts.update(entry_ids(storage, entry))
    return counts


def check(storage: Storage, entries: list[ManifestEntry]) -> list[str]:
    """Problems: listed shards missing or with another checksum / size / row count."""
    problems = []
    for entry in entries:
        if not storage.exists(entry.file):
            problems.append(f"{entry.file}: listed but missing")
            continue
        data = _read(storage, entry)
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            problems.append(f"{entry.file}: sha256 differs from the manifest")
        if len(data) != entry.bytes:
            problems.append(f"{entry.file}: {len(data)} bytes, manifest says {entry.bytes}")
        elif len(_rows(data, entry.format)) != entry.rows:
            problems.append(f"{entry.file}: row count differs from the manifest")
    return problems


def _read(storage: Storage, entry: ManifestEntry) -> bytes:
    with storage.open_read(entry.file) as handle:
        return handle.read()


def _rows(data: bytes, shard_format: str, columns: Optional[list[str]] = None) -> list[dict]:
    """A shard's rows (parquet reads only `columns` when given; JSONL.gz rows are whole)."""
    if shard_format == "parquet":
        return pq.read_table(io.BytesIO(data), columns=columns).to_pylist()
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line]
