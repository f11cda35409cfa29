"""The sink's settings: one msgspec struct on the common machinery (flags, PROX_* environment, YAML).

Same keys as the other services where they mean the same thing (`kafka.*`, `topics.*`, `group_id`,
`http_port`, `commit_interval_s`, `log_level`); the sink's own under `sink.*` (`--sink-path`,
`PROX_SINK_PATH`, YAML `sink.path`).
"""
from __future__ import annotations

import socket
from typing import Annotated, Optional

import msgspec

from prox_proto.topics import Topics

from ..common.config import KafkaSettings, LogLevel, _doc
from .storage import state_beside

MIB = 1024 * 1024


class ShardSettings(msgspec.Struct, kw_only=True):
    path: Annotated[str, _doc(
        "where shards go: a local directory or an fsspec URL (s3://bucket/prefix, gs://...)")] = "shards"
    dropped_path: Annotated[Optional[str], _doc(
        "where dropped documents go when include_dropped is on (default PATH-dropped, never mixed in)")] = None
    state_path: Annotated[Optional[str], _doc(
        "where the manifest (and, for a local path, the staging folder) go, outside PATH so that it holds only "
        "shards; on PATH's filesystem (default PATH.state beside it; the dropped shards' is STATE-dropped, "
        "or DROPPED_PATH.state)")] = None
    include_dropped: Annotated[bool, _doc("also write prox.dropped into its own shards")] = False
    format: Annotated[str, _doc("parquet (zstd) or jsonl.gz", pattern="^(parquet|jsonl\\.gz)$")] = "parquet"
    compression: Annotated[str, _doc("Parquet compression codec")] = "zstd"
    compression_level: Annotated[Optional[int], _doc("codec level (default: the codec's)")] = None
    max_bytes: Annotated[int, _doc(
        "close a shard when its records' uncompressed bytes reach this (about this much unacknowledged "
        "input is held in memory per open shard)", ge=1)] = 128 * MIB
    max_age_s: Annotated[float, _doc("close a shard when it is this old", gt=0)] = 300.0
    row_group_rows: Annotated[int, _doc("rows per Parquet row group", ge=1)] = 4096
    dedup_ttl_s: Annotated[float, _doc(
        "how long an id stays in the de-duplication table after its shard closed", gt=0)] = 6 * 3600.0
    writer_id: Annotated[Optional[str], _doc(
        "names this sink's shards and temp files (default: the host name, a pod name under Kubernetes)")] = None
    staging_dir: Annotated[Optional[str], _doc(
        "for fsspec URLs: local folder where shards are written and fsync'd before upload (default: temp dir)")] = None
    fetch_partition_bytes: Annotated[int, _doc(
        "most bytes one fetch returns per partition (faust consumer_max_fetch_size)", ge=1)] = 16 * MIB
    changelog_replication_factor: Annotated[int, _doc(
        "replication of the id table's changelog topic (3 on a production cluster)", ge=1)] = 1


class SinkSettings(msgspec.Struct, kw_only=True):
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: Topics = msgspec.field(default_factory=Topics)
    sink: ShardSettings = msgspec.field(default_factory=ShardSettings)
    group_id: Annotated[Optional[str], _doc(
        "consumer group, also the faust app id naming the changelog topic (default prox-sink)")] = None
    http_port: Annotated[int, _doc("port of /healthz, /readyz and /metrics", ge=0, le=65535)] = 9400
    commit_interval_s: Annotated[float, _doc(
        "how often faust commits (only acknowledged offsets: records in durable shards)", gt=0)] = 1.0
    log_level: LogLevel = "INFO"

    @property
    def group(self) -> str:
        return self.group_id or "prox-sink"

    @property
    def writer(self) -> str:
        raw = self.sink.writer_id or socket.gethostname() or "sink"
        return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in raw)

    def dropped_path(self) -> str:
        return self.sink.dropped_path or self.sink.path.rstrip("/") + "-dropped"

    def state_path(self) -> str:
        return self.sink.state_path or state_beside(self.sink.path)

    def dropped_state_path(self) -> str:
        if self.sink.state_path:
            return self.sink.state_path.rstrip("/") + "-dropped"
        return state_beside(self.dropped_path())
