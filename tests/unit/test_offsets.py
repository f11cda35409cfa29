"""Commit tracking: only the contiguous prefix of completed offsets is committable."""
from __future__ import annotations

from prox.common.offsets import OffsetTracker


def test_only_the_contiguous_prefix_of_completed_offsets_is_committable():
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.add("p0", offset)
    tracker.complete("p0", 12)
    assert tracker.committable() == {}
    tracker.complete("p0", 10)
    assert tracker.committable() == {"p0": 11}
    tracker.mark_committed({"p0": 11})
    assert tracker.committable() == {}
    tracker.complete("p0", 11)
    assert tracker.committable() == {"p0": 13}
    assert tracker.in_flight() == 1
    tracker.forget(["p0"])
    tracker.complete("p0", 13)  # late completion of a revoked partition is ignored
    assert tracker.committable() == {}


def test_completing_an_offset_twice_changes_nothing():
    tracker = OffsetTracker()
    for offset in (0, 1):
        tracker.add("p0", offset)
    tracker.complete("p0", 0)
    tracker.complete("p0", 0)  # a batch retried after an unexpected error
    assert tracker.committable() == {"p0": 1} and tracker.in_flight() == 1
    tracker.complete("p0", 1)
    assert tracker.committable() == {"p0": 2} and tracker.partitions["p0"].done == set()
