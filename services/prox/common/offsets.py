"""Commit tracking: only the contiguous prefix of completed offsets per partition is committable.

Like Faust's ack engine: batches finish out of order, so an offset is committed only when it and every
offset before it in the partition have had their outputs acknowledged.
"""
from __future__ import annotations

from collections import deque
from typing import Hashable


class PartitionOffsets:
    def __init__(self) -> None:
        self.pending: deque[int] = deque()  # offsets in fetch order (increasing)
        self.done: set[int] = set()
        self.next_commit: int | None = None  # offset to commit (last contiguous done + 1)
        self.committed: int | None = None

    def add(self, offset: int) -> None:
        self.pending.append(offset)

    def complete(self, offset: int) -> None:
        if self.next_commit is not None and offset < self.next_commit:
            return  # completed before (a batch retried after an unexpected error)
        self.done.add(offset)
        while self.pending and self.pending[0] in self.done:
            head = self.pending.popleft()
            self.done.discard(head)
            self.next_commit = head + 1

    @property
    def in_flight(self) -> int:
        return len(self.pending)


class OffsetTracker:
    def __init__(self) -> None:
        self.partitions: dict[Hashable, PartitionOffsets] = {}

    def add(self, tp: Hashable, offset: int) -> None:
        self.partitions.setdefault(tp, PartitionOffsets()).add(offset)

    def complete(self, tp: Hashable, offset: int) -> None:
        partition = self.partitions.get(tp)
        if partition is not None:  # a revoked partition's late completion is simply ignored
            partition.complete(offset)

    def committable(self) -> dict[Hashable, int]:
        """Offsets to commit now: advanced since the last commit, contiguous prefix only."""
        return {
            tp: p.next_commit
            for tp, p in self.partitions.items()
            if p.next_commit is not None and p.next_commit != p.committed
        }

    def mark_committed(self, offsets: dict[Hashable, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self.partitions:
                self.partitions[tp].committed = offset

    def forget(self, tps) -> None:
        for tp in tps:
            self.partitions.pop(tp, None)

    def in_flight(self, tps=None) -> int:
        chosen = self.partitions if tps is None else {tp: self.partitions[tp] for tp in tps if tp in self.partitions}
        return sum(p.in_flight for p in chosen.values())
