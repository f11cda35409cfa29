"""Exactly-once processing: each input partition's outputs and offsets commit in one Kafka transaction.

One transactional producer per input partition, its `transactional.id` derived from the group and the
partition (`prox-executor-prox.kept-3`): whichever member owns the partition after a rebalance or a restart
starts a producer with the same id, and that fences the previous owner's (a zombie's) open transaction, which
the broker then aborts. Downstream consumers read `read_committed`, so they never see an aborted output.
Transactions of one partition commit in fetch order (`TransactionTurns`), so a committed offset never covers a
batch whose outputs are not committed.
"""
from __future__ import annotations

import asyncio
from typing import Hashable, Optional

from aiokafka import AIOKafkaProducer, TopicPartition


def transactional_id(group_id: str, tp: TopicPartition) -> str:
    return f"{group_id}-{tp.topic}-{tp.partition}"


class PartitionProducers:
    """The transactional producer of each owned input partition, started on first use."""

    def __init__(self, options: dict, group_id: str):
        self.options, self.group_id = options, group_id
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}

    async def producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        producer = self.producers.get(tp)
        if producer is None:
            producer = AIOKafkaProducer(**self.options, transactional_id=transactional_id(self.group_id, tp))
            await producer.start()  # InitProducerId: fences an earlier owner's producer of this partition
            self.producers[tp] = producer
        return producer

    async def discard(self, tp: TopicPartition) -> None:
        """Stop and forget one partition's producer (revoked, fenced, or in a fatal state)."""
        producer = self.producers.pop(tp, None)
        if producer is not None:
            await producer.stop()

    async def close(self, tps: Optional[list] = None) -> None:
        for tp in list(self.producers if tps is None else tps):
            await self.discard(tp)


class TransactionTurns:
    """Per partition, the order in which batches were fetched: a batch's transaction waits for the previous
    batch of its partition to finish (committed or given up), whatever order their processing ends in."""

    def __init__(self) -> None:
        self.last: dict[Hashable, asyncio.Future] = {}

    def reserve(self, tp: Hashable) -> tuple[Optional[asyncio.Future], asyncio.Future]:
        """(the turn to wait for, this batch's turn): called in fetch order."""
        previous = self.last.get(tp)
        turn = asyncio.get_running_loop().create_future()
        self.last[tp] = turn
        return previous, turn

    def forget(self, tps) -> None:
        for tp in tps:
            self.last.pop(tp, None)
