"""The id table: which document ids are already in a published shard, for `ttl_s` seconds.

Entries are `key -> [closed_at, partition, shard file]`. The backing table is the faust Table (local
store + changelog topic, partition = the source record's partition, so the table moves with the
partition on a rebalance and is rebuilt from the changelog after a restart); tests use `MemoryTable`.

An entry counts only if its shard is published (listed in the manifest): entries are made durable in the
changelog *before* the shard is listed, so a crash in between leaves entries for a shard that never
appeared, and the re-read records must then be written, not dropped.
Memory stays bounded: `expire()` deletes entries older than the TTL (tombstones in the changelog, which
Kafka's compaction then removes).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable, Optional, Protocol


class IdTable(Protocol):
    def get(self, key: str) -> Optional[list]: ...

    def put(self, key: str, value: list, partition: int) -> Optional[Awaitable]: ...

    def delete(self, key: str, partition: int) -> Optional[Awaitable]: ...

    def items(self) -> Iterable[tuple[str, list]]: ...

    def __len__(self) -> int: ...


class MemoryTable:
    """A dict with the IdTable interface; `changelog` records what a changelog topic would receive."""

    def __init__(self) -> None:
        self.data: dict[str, list] = {}
        self.changelog: list[tuple[int, str, Any]] = []

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value, partition):
        self.data[key] = value
        self.changelog.append((partition, key, value))

    def delete(self, key, partition):
        self.data.pop(key, None)
        self.changelog.append((partition, key, None))

    def items(self):
        return list(self.data.items())

    def __len__(self):
        return len(self.data)


def dedup_key(kind: str, doc_id: str) -> str:
    return doc_id if kind == "refined" else f"{kind}:{doc_id}"


class DedupIndex:
    """The id table, plus the ids of the shards published within the TTL as read back from storage at
    start (`preload`): the shards themselves are the final word on what was written, so a restart never
    depends on the changelog alone having every entry."""

    def __init__(self, table: IdTable, ttl_s: float):
        self.table, self.ttl_s = table, ttl_s
        self.local: dict[str, tuple[float, str]] = {}

    def preload(self, keys: Iterable[str], closed_at: float, shard: str) -> None:
        for key in keys:
            self.local[key] = (closed_at, shard)

    def is_duplicate(self, key: str, now: float, published: Callable[[str], bool]) -> bool:
        entry = self.table.get(key)
        if entry and now - entry[0] < self.ttl_s and published(entry[2]):
            return True
        local = self.local.get(key)
        return local is not None and now - local[0] < self.ttl_s

    def remember(self, keys: Iterable[tuple[str, int]], shard: str, now: float) -> list[Awaitable]:
        """Record every (key, partition) of a shard; returns the changelog sends to wait for."""
        pending = []
        for key, partition in keys:
            sent = self.table.put(key, [now, partition, shard], partition)
            if sent is not None:
                pending.append(sent)
        return pending

    def expire(self, now: float) -> int:
        expired = [(key, value[1]) for key, value in self.table.items() if now - value[0] >= self.ttl_s]
        for key, partition in expired:
            self.table.delete(key, partition)
        for key in [key for key, (closed_at, _) in self.local.items() if now - closed_at >= self.ttl_s]:
            del self.local[key]
        return len(expired)

    def __len__(self) -> int:
        return len(self.table)
