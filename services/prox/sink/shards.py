"""Rolling shards: Parquet (zstd) by default or JSONL.gz, one open shard per kind at a time.

Rows are buffered and written to the shard's temp file a row group at a time; `finish()` closes the
file, fsyncs it and computes its sha256 (read back from disk). The shard is not visible until published.
"""
from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Optional

import pyarrow.parquet as pq

from .manifest import ManifestEntry, OffsetRange
from .rows import SCHEMA, to_table
from .storage import Storage, sha256_file

EXTENSIONS = {"parquet": ".parquet", "jsonl.gz": ".jsonl.gz"}


@dataclass
class OpenShard:
    name: str
    temp: Path
    created_at: float  # wall clock
    opened: float  # monotonic
    rows: int = 0
    raw_bytes: int = 0
    duplicates: int = 0
    ids: set = field(default_factory=set)
    keys: list = field(default_factory=list)  # (dedup key, partition) of every row
    offsets: dict = field(default_factory=dict)  # (topic, partition) -> [first, last]
    acks: list = field(default_factory=list)  # acknowledgements owed once this shard is durable
    buffer: list = field(default_factory=list)
    handle: Any = None


@dataclass
class FinishedShard:
    name: str
    temp: Path
    entry: ManifestEntry
    keys: list
    acks: list


class ShardWriter:
    def __init__(self, storage: Storage, kind: str, *, format: str = "parquet", compression: str = "zstd",
                 compression_level: Optional[int] = None, row_group_rows: int = 4096,
                 max_bytes: int = 128 * 1024 * 1024, max_age_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        if format not in EXTENSIONS:
            raise ValueError(f"shard format must be one of {sorted(EXTENSIONS)}, not {format!r}")
        self.storage, self.kind, self.format = storage, kind, format
        self.compression, self.compression_level = compression, compression_level
        self.row_group_rows, self.max_bytes, self.max_age_s = row_group_rows, max_bytes, max_age_s
        self.clock, self.wall = clock, wall
        self.open: Optional[OpenShard] = None

    # --- rows ----------------------------------------------------------------------------
    def add(self, row: dict, key: str, raw_bytes: int, tp: Hashable, offset: int, ack: Any = None) -> None:
        shard = self.open or self._start()
        shard.buffer.append(row)
        shard.ids.add(row["id"])
        shard.keys.append((key, tp[1]))
        shard.rows += 1
        shard.raw_bytes += raw_bytes
        span = shard.offsets.get(tp)
        if span is None:
            shard.offsets[tp] = [offset, offset]
        else:
            span[0], span[1] = min(span[0], offset), max(span[1], offset)
        if ack is not None:
            shard.acks.append(ack)
        if len(shard.buffer) >= self.row_group_rows:
            self._write_buffer()

    def add_duplicate(self, ack: Any = None) -> None:
        """A copy of an id already in the open shard: nothing is written; its ack waits for the shard."""
        assert self.open is not None
        self.open.duplicates += 1
        if ack is not None:
            self.open.acks.append(ack)

    def holds(self, doc_id: str) -> bool:
        return self.open is not None and doc_id in self.open.ids

    def age_s(self) -> float:
        return self.clock() - self.open.opened if self.open else 0.0

    def should_close(self) -> bool:
        return self.open is not None and (self.open.raw_bytes >= self.max_bytes or self.age_s() >= self.max_age_s)

    # --- files ---------------------------------------------------------------------------
    def _start(self) -> OpenShard:
        created = self.wall()
        name = f"{self.kind}-{int(created * 1000):013d}-{self.storage.writer}-{uuid.uuid4().hex[:8]}" + \
            EXTENSIONS[self.format]
        temp = self.storage.temp_path(name)
        shard = OpenShard(name=name, temp=temp, created_at=created, opened=self.clock())
        if self.format == "parquet":
            shard.handle = pq.ParquetWriter(str(temp), SCHEMA, compression=self.compression,
                                            compression_level=self.compression_level)
        else:
            shard.handle = gzip.GzipFile(filename="", mode="wb", fileobj=open(temp, "wb"),
                                         compresslevel=self.compression_level or 6, mtime=0)
        self.open = shard
        return shard

    def _write_buffer(self) -> None:
        shard = self.open
        if not shard.buffer:
            return
        if self.format == "parquet":
            shard.handle.write_table(to_table(shard.buffer), row_group_size=len(shard.buffer))
        else:
            shard.handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in shard.buffer).encode())
        shard.buffer = []

    def finish(self) -> Optional[FinishedShard]:
        """Close the open shard's temp file durably (flush, fsync); None when no shard is open."""
        shard = self.open
        if shard is None:
            return None
        self._write_buffer()
        if self.format == "parquet":
            shard.handle.close()
        else:
            raw = shard.handle.fileobj
            shard.handle.close()
            raw.close()
        with open(shard.temp, "rb+") as handle:
            os.fsync(handle.fileno())
        entry = ManifestEntry(
            file=shard.name, kind=self.kind, format=self.format, rows=shard.rows,
            bytes=shard.temp.stat().st_size, sha256=sha256_file(shard.temp),
            offsets=[OffsetRange(topic, partition, first, last)
                     for (topic, partition), (first, last) in sorted(shard.offsets.items())],
            duplicates=shard.duplicates, writer=self.storage.writer, created_at=shard.created_at,
            closed_at=self.wall(),
        )
        self.open = None
        return FinishedShard(name=shard.name, temp=shard.temp, entry=entry, keys=shard.keys, acks=shard.acks)

    def abandon(self) -> None:
        """Drop the open shard (its records were never acknowledged: they are read again)."""
        shard, self.open = self.open, None
        if shard is not None:
            try:
                shard.handle.close()
            except Exception:
                pass
            shard.temp.unlink(missing_ok=True)
