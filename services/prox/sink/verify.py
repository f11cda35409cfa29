"""Read published shards back and check them against their manifest (tests, `wait_for_shards`, audits)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections import Counter

import pyarrow.parquet as pq

from .manifest import ManifestEntry
from .storage import Storage


def read_rows(storage: Storage, entry: ManifestEntry) -> list[dict]:
    with storage.open_read(entry.file) as handle:
        data = handle.read()
    if entry.format == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pylist()
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line]


def entry_ids(storage: Storage, entry: ManifestEntry) -> list[str]:
    """The ids of one published shard (only the id column is read)."""
    with storage.open_read(entry.file) as handle:
        data = handle.read()
    if entry.format == "parquet":
        return pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist()
    return [json.loads(line)["id"] for line in gzip.decompress(data).decode("utf-8").splitlines() if line]


def shard_ids(storage: Storage, entries: list[ManifestEntry]) -> Counter:
    """id -> how many published rows carry it. A listed shard not renamed into place yet (the moment
    between its manifest line and its rename, or a crash there until the sink's next start) is skipped."""
    counts: Counter = Counter()
    for entry in entries:
        if not storage.exists(entry.file):
            continue
        with storage.open_read(entry.file) as handle:
            data = handle.read()
        if entry.format == "parquet":
            counts.update(pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist())
        else:
            counts.update(json.loads(line)["id"] for line in gzip.decompress(data).decode().splitlines() if line)
    return counts


def check(storage: Storage, entries: list[ManifestEntry]) -> list[str]:
    """Problems: listed shards missing or with another checksum / size / row count."""
    problems = []
    for entry in entries:
        if not storage.exists(entry.file):
            problems.append(f"{entry.file}: listed but missing")
            continue
        with storage.open_read(entry.file) as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            problems.append(f"{entry.file}: sha256 differs from the manifest")
        if len(data) != entry.bytes:
            problems.append(f"{entry.file}: {len(data)} bytes, manifest says {entry.bytes}")
        elif len(read_rows(storage, entry)) != entry.rows:
            problems.append(f"{entry.file}: row count differs from the manifest")
    return problems
