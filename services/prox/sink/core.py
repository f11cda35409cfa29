"""The sink's protocol, independent of faust: de-duplicate, buffer into the open shard, close it durably,
and only then acknowledge its records.

THE COMMIT RULE. A record's offset may be committed only after the shard holding it is durable.
The faust agent iterates its stream with `noack()`, so faust never acknowledges an event by itself; faust
commits (every `commit_interval_s`, and once more right after each shard close) only the contiguous
prefix of acknowledged offsets per partition. Closing a shard does, in this order:

  1. finish the temp file: flush, close, fsync; sha256 read back from disk;
  2. write its ids into the id table and wait until the changelog topic acknowledged them;
  3. append its line to the manifest (`PATH.state/manifest.jsonl`) and fsync (the shard now *exists*: a
     crash from here on is rolled forward from the fsync'd temp file at the next start);
  4. publish: atomic rename + directory fsync (or one upload to an object store);
  5. acknowledge every record the shard holds (rows and the in-shard duplicates), then commit.

A crash before 3 loses nothing: no record of the shard was acknowledged, so they are read again; their
table entries point at a shard that was never listed and so are ignored. A crash after 3 leaves a listed
shard whose ids are in the table: re-read records are recognised as duplicates. A record whose id is
already in a published shard is a duplicate: counted, never written, done at once.

Acknowledgements reach faust strictly in offset order per partition (`_release`): a record that is done
waits for every earlier record of its partition. faust's own contiguity check cannot be relied on for
this (faust-streaming 0.15: `Consumer._new_offset` lets the commit skip one unacknowledged offset, and
skips the check entirely while the committed offset is 0), so it only ever sees a contiguous prefix.

Offsets must also reach the agent without holes: faust discards records fetched for a partition it
considers inactive and then treats the hole as a gap it may commit over. The input topics have
contiguous offsets (no transactions, no compaction), so a record arriving past the next expected offset
(the last one seen + 1, or faust's committed offset after an assignment) means a record was skipped:
the sink exits at once (`OffsetGap`) without acknowledging it, and the records are read again on restart.
A record below it was already handled in this assignment (faust re-delivers after a seek) and is ignored.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Optional

import msgspec

from prox_proto import RefinedDocument, UnsupportedVersion, decode_json

from ..common import metrics
from ..common.logs import log_event
from .dedup import DedupIndex, IdTable, dedup_key
from .manifest import Manifest
from .rows import to_row
from .settings import SinkSettings
from .shards import FinishedShard, ShardWriter
from .storage import Storage
from .verify import entry_ids

log = logging.getLogger("prox.sink")
SERVICE = "sink"
MANIFEST_RELOAD_S = 5.0


class OffsetGap(RuntimeError):
    """A record arrived past the next expected offset of its partition: one was skipped upstream."""
STALE_TEMP_GRACE_S = 600.0  # another writer's temp file untouched this long past max_age_s is abandoned


async def _settle(result: Any) -> None:
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


class SinkCore:
    def __init__(self, settings: SinkSettings, table: IdTable, *,
                 flush_table: Optional[Callable[[list], Awaitable]] = None,
                 commit: Optional[Callable[[], Awaitable]] = None,
                 dead_letter: Optional[Callable[..., Awaitable]] = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 offload: bool = True, committed: Optional[Callable[[tuple[str, int]], Optional[int]]] = None):
        self.settings = settings
        shard = settings.sink
        self.kinds = {settings.topics.refined: "refined"}
        paths = {"refined": (shard.path, settings.state_path())}
        if shard.include_dropped:
            self.kinds[settings.topics.dropped] = "dropped"
            paths["dropped"] = (settings.dropped_path(), settings.dropped_state_path())
        self.storages = {kind: Storage(path, settings.writer, shard.staging_dir, state_url=state)
                         for kind, (path, state) in paths.items()}
        self.manifests = {kind: Manifest(storage) for kind, storage in self.storages.items()}
        self.writers = {
            kind: ShardWriter(storage, kind, format=shard.format, compression=shard.compression,
                              compression_level=shard.compression_level, row_group_rows=shard.row_group_rows,
                              max_bytes=shard.max_bytes, max_age_s=shard.max_age_s, clock=clock, wall=wall)
            for kind, storage in self.storages.items()
        }
        self.dedup = DedupIndex(table, shard.dedup_ttl_s)
        self.flush_table = flush_table
        self.commit = commit
        self.dead_letter = dead_letter
        self.clock, self.wall = clock, wall
        self.offload = offload  # file work in a thread (the event loop keeps heartbeating)
        self.lock = asyncio.Lock()
        self.published: dict[str, set[str]] = {kind: set() for kind in self.storages}
        self._manifest_loaded: dict[str, float] = {}
        self.committed = committed  # (topic, partition) -> committed offset after an assignment (faust)
        self.expected: dict[tuple[str, int], int] = {}  # next offset each partition must deliver
        self.order: dict[tuple[str, int], deque] = {}  # (topic, partition) -> [offset, ack, done] in fetch order
        self.durable: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset after a durable shard
        self.counts = {"rows": 0, "duplicates": 0, "shards": 0, "bytes": 0, "dead_letters": 0}
        started = wall()
        for kind in self.storages:
            metrics.SINK_LAST_SHARD.labels(SERVICE, kind).set(started)
            for counter in (metrics.SINK_SHARDS, metrics.SINK_ROWS, metrics.SINK_BYTES, metrics.SINK_DUPLICATES):
                counter.labels(SERVICE, kind)

    # --- start -----------------------------------------------------------------------------
    def recover(self) -> dict[str, dict[str, int]]:
        """Before consuming: finish what a crash interrupted (see Manifest.recover), load published names."""
        report = {}
        horizon = self.wall() - self.dedup.ttl_s
        for kind, manifest in self.manifests.items():
            report[kind] = manifest.recover(stale_after_s=self.settings.sink.max_age_s + STALE_TEMP_GRACE_S)
            self._load_published(kind)
            recent = [entry for entry in manifest.entries()
                      if entry.closed_at >= horizon and self.storages[kind].exists(entry.file)]
            for entry in recent:  # ids of the shards within the TTL, read back from storage
                self.dedup.preload((dedup_key(kind, doc_id) for doc_id in entry_ids(self.storages[kind], entry)),
                                   entry.closed_at, entry.file)
            report[kind]["preloaded_shards"] = len(recent)
        log_event(log, logging.INFO, "sink storage recovered", service=SERVICE, **{
            f"{kind}_{k}": v for kind, counts in report.items() for k, v in counts.items()})
        return report

    def _load_published(self, kind: str) -> None:
        self.published[kind].update(entry.file for entry in self.manifests[kind].entries())
        self._manifest_loaded[kind] = self.clock()

    def is_published(self, kind: str, shard: str) -> bool:
        if shard in self.published[kind]:
            return True
        # Another replica may have published it since (a rebalance moved its partitions here).
        if self.clock() - self._manifest_loaded.get(kind, float("-inf")) >= MANIFEST_RELOAD_S:
            self._load_published(kind)
        return shard in self.published[kind]

    # --- records ---------------------------------------------------------------------------
    async def handle(self, topic: str, partition: int, offset: int, key: Optional[bytes], value: bytes,
                     ack: Callable[[], Any]) -> str:
        """One record; returns what became of it: written | duplicate | dead_letter."""
        kind = self.kinds[topic]
        metrics.DOCUMENTS_IN.labels(SERVICE, topic).inc()
        tp = (topic, partition)
        if not self._in_sequence(tp, offset):
            return "redelivered"
        pending = [offset, ack, False]
        self.order.setdefault(tp, deque()).append(pending)
        done = lambda: self._done(tp, pending)  # noqa: E731
        try:
            doc = decode_json(value, RefinedDocument)
        except (msgspec.DecodeError, msgspec.ValidationError, UnsupportedVersion) as exc:
            reason = "unsupported_version" if isinstance(exc, UnsupportedVersion) else "invalid_message"
            if self.dead_letter is not None:
                await self.dead_letter(topic, partition, offset, key, value, reason, exc)
            metrics.DEAD_LETTERS.labels(SERVICE, reason).inc()
            self.counts["dead_letters"] += 1
            await done()
            return "dead_letter"
        dkey = dedup_key(kind, doc.id)
        async with self.lock:
            writer = self.writers[kind]
            if writer.holds(doc.id):
                writer.add_duplicate(done)
                self._duplicate(kind)
                return "duplicate"
            if self.dedup.is_duplicate(dkey, self.wall(), lambda shard: self.is_published(kind, shard)):
                self._duplicate(kind)
                await done()
                return "duplicate"
            writer.add(to_row(doc), dkey, len(value), tp, offset, done)
            if writer.should_close():
                await self._close(kind)
        return "written"

    def _in_sequence(self, tp, offset: int) -> bool:
        """True for the next offset of the partition; False for one already handled (faust re-delivering
        after a seek: the first delivery acknowledges it); OffsetGap when one was skipped."""
        expected = self.expected.get(tp)
        if expected is None and self.committed is not None:
            expected = self.committed(tp)
        if expected is not None and offset > expected:
            raise OffsetGap(f"{tp[0]}:{tp[1]} delivered offset {offset}, expected {expected}")
        if tp in self.expected and offset < expected:
            return False
        self.expected[tp] = offset + 1
        return True

    def forget_positions(self) -> None:
        """After the open shards were closed for a rebalance: the next assignment starts at the commits."""
        self.expected.clear()

    async def _done(self, tp, pending: list) -> None:
        """This record may be acknowledged; acknowledge the partition's contiguous prefix of done records."""
        pending[2] = True
        queue = self.order[tp]
        while queue and queue[0][2]:
            _, ack, _ = queue.popleft()
            await _settle(ack())

    def _duplicate(self, kind: str) -> None:
        self.counts["duplicates"] += 1
        metrics.SINK_DUPLICATES.labels(SERVICE, kind).inc()

    # --- closing ---------------------------------------------------------------------------
    async def tick(self) -> None:
        """Close shards past their age limit; refresh the gauges."""
        async with self.lock:
            for kind, writer in self.writers.items():
                if writer.should_close():
                    await self._close(kind)
        for kind, writer in self.writers.items():
            metrics.SINK_OPEN_SHARD_AGE.labels(SERVICE, kind).set(writer.age_s())
            metrics.SINK_OPEN_SHARD_ROWS.labels(SERVICE, kind).set(writer.open.rows if writer.open else 0)
        metrics.SINK_ID_TABLE.labels(SERVICE).set(len(self.dedup))

    async def close_all(self) -> None:
        """Close every open shard (on stop and before partitions are revoked)."""
        async with self.lock:
            for kind in self.writers:
                await self._close(kind)

    def expire(self) -> int:
        return self.dedup.expire(self.wall())

    async def _run(self, fn, *args):
        return await asyncio.to_thread(fn, *args) if self.offload else fn(*args)

    async def _close(self, kind: str) -> Optional[FinishedShard]:
        writer, manifest, storage = self.writers[kind], self.manifests[kind], self.storages[kind]
        finished = await self._run(writer.finish)                              # 1. temp file fsync'd
        if finished is None:
            return None
        sends = self.dedup.remember(finished.keys, finished.name, self.wall())  # 2. ids -> changelog
        if self.flush_table is not None:
            await self.flush_table(sends)
        await self._run(manifest.append, finished.entry)                       # 3. listed (durable)
        await self._run(storage.publish, finished.temp, finished.name)         # 4. visible, atomically
        self.published[kind].add(finished.name)
        for ack in finished.acks:                                              # 5. acknowledge, commit
            await _settle(ack())
        for offsets in finished.entry.offsets:
            tp = (offsets.topic, offsets.partition)
            self.durable[tp] = max(self.durable.get(tp, 0), offsets.last + 1)
        if self.commit is not None:
            await self.commit()
        entry = finished.entry
        self.counts["rows"] += entry.rows
        self.counts["shards"] += 1
        self.counts["bytes"] += entry.bytes
        metrics.SINK_SHARDS.labels(SERVICE, kind).inc()
        metrics.SINK_ROWS.labels(SERVICE, kind).inc(entry.rows)
        metrics.SINK_BYTES.labels(SERVICE, kind).inc(entry.bytes)
        metrics.SINK_LAST_SHARD.labels(SERVICE, kind).set(self.wall())
        log_event(log, logging.INFO, "shard published", service=SERVICE, kind=kind, file=entry.file,
                  rows=entry.rows, bytes=entry.bytes, duplicates=entry.duplicates)
        return finished
