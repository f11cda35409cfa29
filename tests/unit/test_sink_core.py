"""The sink's protocol without a broker: de-duplication, the id table's TTL and the commit rule
(a record is acknowledged only once the shard holding it is durable), including crashes at each step."""
from __future__ import annotations

from collections import Counter

import pytest

from prox.sink.core import SinkCore
from prox.sink.dedup import DedupIndex, MemoryTable
from prox.sink.manifest import Manifest
from prox.sink.settings import ShardSettings, SinkSettings
from prox.sink.verify import check, read_rows, shard_ids
from prox_proto import encode_json
from prox_proto.topics import Topics
from tests.unit.test_sink_shards import make_doc

TOPIC = "prox.refined"


class Crash(Exception):
    pass


class Harness:
    """A SinkCore with a MemoryTable (survives 'restarts' like a changelog topic) and an event log."""

    def __init__(self, tmp_path, table=None, **shard):
        self.log: list[str] = []
        self.acked: list[int] = []
        self.table = table if table is not None else MemoryTable()
        self.clock = 0.0
        self.wall = 1_000_000.0
        settings = SinkSettings(topics=Topics(), sink=ShardSettings(
            path=str(tmp_path / "shards"), writer_id="w", max_age_s=shard.pop("max_age_s", 60.0),
            max_bytes=shard.pop("max_bytes", 10**9), dedup_ttl_s=shard.pop("dedup_ttl_s", 3600.0), **shard))
        self.core = SinkCore(settings, self.table, flush_table=self._flush, commit=self._commit,
                             clock=lambda: self.clock, wall=lambda: self.wall, offload=False)
        storage = self.core.storages["refined"]
        manifest = self.core.manifests["refined"]
        self.storage, self.manifest = storage, manifest
        for obj, name in ((manifest, "append"), (storage, "publish")):
            self._trace(obj, name)
        self.core.recover()

    def _trace(self, obj, name):
        original = getattr(obj, name)

        def traced(*args):
            self.log.append(name)
            return original(*args)

        setattr(obj, name, traced)

    async def _flush(self, sends):
        self.log.append("changelog")

    async def _commit(self):
        self.log.append("commit")

    async def send(self, doc_id: int, offset: int, partition: int = 0):
        def ack(offset=offset):
            self.log.append(f"ack {offset}")
            self.acked.append(offset)

        return await self.core.handle(TOPIC, partition, offset, None, encode_json(make_doc(doc_id)), ack)

    def crash_at(self, name):
        obj = self.manifest if name == "append" else self.storage

        def boom(*args):
            raise Crash(name)

        setattr(obj, name, boom)


def rows_by_id(harness) -> Counter:
    return shard_ids(harness.storage, Manifest(harness.storage).entries())


async def test_records_are_acknowledged_only_after_their_shard_is_listed_published_and_in_the_changelog(tmp_path):
    h = Harness(tmp_path)
    for offset in range(3):
        assert await h.send(offset, offset) == "written"
    assert h.acked == [] and h.log == []  # an open shard: nothing acknowledged, nothing committed
    await h.core.close_all()
    assert h.log == ["changelog", "append", "publish", "ack 0", "ack 1", "ack 2", "commit"]
    assert check(h.storage, Manifest(h.storage).entries()) == []


async def test_a_duplicate_in_the_open_shard_waits_for_it_and_one_in_a_published_shard_is_acked_at_once(tmp_path):
    h = Harness(tmp_path)
    await h.send(1, 10)
    assert await h.send(1, 11) == "duplicate"
    assert h.acked == []
    await h.core.close_all()
    assert h.acked == [10, 11]
    assert await h.send(1, 12) == "duplicate"
    assert h.acked == [10, 11, 12]
    assert rows_by_id(h) == Counter({"doc-1": 1}) and h.core.counts["duplicates"] == 2


async def test_shard_closes_on_size_during_handling_and_on_age_at_tick(tmp_path):
    h = Harness(tmp_path, max_bytes=1, max_age_s=5.0)
    await h.send(1, 0)  # over max_bytes: closed right away
    assert h.acked == [0]
    h.core.writers["refined"].max_bytes = 10**9
    await h.send(2, 1)
    await h.core.tick()
    assert h.acked == [0]
    h.clock += 5.0
    await h.core.tick()
    assert h.acked == [0, 1]
    assert len(Manifest(h.storage).entries()) == 2


@pytest.mark.parametrize("step", ["append", "publish"])
async def test_a_crash_while_closing_loses_nothing_and_writes_nothing_twice(tmp_path, step):
    first = Harness(tmp_path)
    for offset in range(5):
        await first.send(offset, offset)
    first.crash_at(step)
    with pytest.raises(Crash):
        await first.core.close_all()
    assert first.acked == []  # so faust commits nothing: every record is read again

    # Restart: same table (rebuilt from the changelog), storage recovered, the records read again.
    second = Harness(tmp_path, table=first.table)
    for offset in range(5):
        await second.send(offset, offset)
    await second.send(5, 5)
    await second.core.close_all()
    assert rows_by_id(second) == Counter({f"doc-{i}": 1 for i in range(6)})
    assert check(second.storage, Manifest(second.storage).entries()) == []
    assert second.acked == list(range(6))
    # Crash before the manifest line: the table's entries point at a shard never listed, so the re-read
    # records are written again. Crash after it: the shard is rolled forward; re-reads are duplicates.
    assert second.core.counts["duplicates"] == (5 if step == "publish" else 0)
    assert not any(second.storage.tmp_dir.glob("*.tmp"))


async def test_undecodable_message_is_dead_lettered_and_acknowledged(tmp_path):
    letters = []
    h = Harness(tmp_path)

    async def dead_letter(*args):
        letters.append(args[5])

    h.core.dead_letter = dead_letter
    result = await h.core.handle(TOPIC, 0, 7, b"k", b"{not json", lambda: h.acked.append(7))
    assert result == "dead_letter" and letters == ["invalid_message"] and h.acked == [7]


async def test_dropped_documents_go_to_their_own_shards_when_enabled(tmp_path):
    h = Harness(tmp_path, include_dropped=True)
    doc = make_doc(1, text=None, dropped=True)
    await h.core.handle("prox.dropped", 0, 0, None, encode_json(doc), lambda: None)
    await h.send(1, 0)  # the same id refined: another namespace in the id table
    await h.core.close_all()
    dropped = h.core.storages["dropped"]
    entries = Manifest(dropped).entries()
    assert str(dropped.root) == str(tmp_path / "shards") + "-dropped"
    assert dropped.state_root == tmp_path / "shards-dropped.state"  # its own manifest, beside its folder
    assert [row["id"] for row in read_rows(dropped, entries[0])] == ["doc-1"]
    assert rows_by_id(h) == Counter({"doc-1": 1})


def test_id_table_entries_expire_after_the_ttl_with_tombstones():
    table = MemoryTable()
    index = DedupIndex(table, ttl_s=100.0)
    index.remember([("a", 0), ("b", 1)], "s1", now=0.0)
    index.remember([("c", 1)], "s2", now=50.0)
    published = {"s1", "s2"}.__contains__
    assert index.is_duplicate("a", 99.0, published)
    assert not index.is_duplicate("a", 100.0, published)  # past the TTL it no longer counts
    assert index.expire(now=120.0) == 2
    assert len(index) == 1 and table.changelog[-2:] == [(0, "a", None), (1, "b", None)]
    assert not index.is_duplicate("c", 60.0, {"s1"}.__contains__)  # its shard was never published


async def test_acknowledgements_reach_faust_in_offset_order_per_partition(tmp_path):
    h = Harness(tmp_path)
    await h.send(1, 0)
    await h.core.close_all()  # doc-1 published
    await h.send(2, 1)  # open shard
    assert await h.send(1, 2) == "duplicate"  # done at once, but offset 1 is still in the open shard
    assert await h.send(3, 0, partition=1) == "written"
    assert h.acked == [0]  # faust must not see 2 before 1 (its commit could skip offset 1)
    await h.core.close_all()
    assert h.acked == [0, 1, 2, 0]


def test_the_local_stack_runs_a_supervised_sink_when_given_a_shards_folder(tmp_path):
    from prox.cli.stack import LocalStack

    stack = LocalStack(tmp_path / "work", shards=tmp_path / "out" / "shards")  # nothing is started
    stack._add_service("sink", 0)
    child = stack.children["sink"]
    assert child.command[-2:] == ["service", "sink"]
    assert child.env["PROX_SINK_PATH"] == str(tmp_path / "out" / "shards")
    assert child.env["PROX_KAFKA_BOOTSTRAP_SERVERS"] == stack.bootstrap_servers
    assert child.env["PROX_KAFKA_IDEMPOTENT"] == "false"


async def test_a_restart_recognises_published_ids_from_storage_even_without_the_changelog(tmp_path):
    first = Harness(tmp_path)
    for offset in range(3):
        await first.send(offset, offset)
    await first.core.close_all()
    second = Harness(tmp_path, table=MemoryTable())  # the changelog lost every entry
    for offset in range(3):
        assert await second.send(offset, offset + 10) == "duplicate"
    await second.core.close_all()
    assert rows_by_id(second) == Counter({f"doc-{i}": 1 for i in range(3)})


async def test_a_skipped_offset_stops_the_sink_before_anything_past_it_is_acknowledged(tmp_path):
    from prox.sink.core import OffsetGap

    h = Harness(tmp_path)
    h.core.committed = lambda tp: 5  # faust's committed offset after the assignment
    with pytest.raises(OffsetGap):
        await h.send(1, 6)  # offset 5 never arrived
    await h.send(1, 5)
    await h.send(2, 6)
    assert await h.send(1, 5) == "redelivered"  # faust re-delivering after a seek: handled once
    with pytest.raises(OffsetGap):
        await h.send(3, 8)  # 7 skipped
    await h.core.close_all()
    assert h.acked == [5, 6]


def test_the_lag_of_a_partition_another_replica_took_over_is_removed():
    from types import SimpleNamespace

    from aiokafka import TopicPartition

    from prox.common import metrics
    from prox.sink.app import update_lag
    from prox.sink.core import SERVICE

    tps = [TopicPartition(TOPIC, partition) for partition in (0, 1)]
    consumer = SimpleNamespace(assignment=lambda: set(tps), highwater=lambda tp: 9, _committed_offset={tps[1]: 4})
    app = SimpleNamespace(consumer=consumer, lag_reported=frozenset())
    core = SimpleNamespace(kinds={TOPIC: "refined"}, durable={(TOPIC, 0): 7})

    def series():
        return {int(s.labels["partition"]): s.value for metric in metrics.CONSUMER_LAG.collect()
                for s in metric.samples if s.labels["service"] == SERVICE and s.labels["topic"] == TOPIC}

    update_lag(app, core)
    assert series() == {0: 2.0, 1: 5.0}
    tps.pop()  # rebalanced: partition 1 now belongs to another sink replica
    update_lag(app, core)
    assert series() == {0: 2.0}
    tps.clear()
    update_lag(app, core)
    assert series() == {}


async def test_waiting_for_shards_leaves_the_event_loop_free(tmp_path):
    """`prox local` waits for the shards on its event loop: a signal handler there must still run."""
    import asyncio
    import time

    from prox.sink.service import wait_for_shards

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(wait_for_shards(tmp_path, rows=1, timeout_s=60), 0.3)
    assert time.monotonic() - started < 5
