"""The consume → process → produce loop shared by every service.

At-least-once: auto-commit is off and an offset is committed only when the outputs of it and of every
earlier offset in its partition are acknowledged by the broker (`OffsetTracker`). Fetching pauses while
too much work is in flight (e.g. Triton is slow or down), but polling continues so the member stays in
its group. Bad input never stops a partition: a failure becomes a dead letter and the offset moves on.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Optional, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (CommitFailedError, CorruptRecordException, KafkaError, MessageSizeTooLargeError,
                             ProducerFenced, UnsupportedCodecError)

from . import metrics
from .backoff import Backoff
from prox_proto import encode_for

from .config import ServiceSettings, kafka_client_options
from .kafka_io import producer_options
from .dlq import dead_letter
from .http import start_http
from .logs import log_event
from .offsets import OffsetTracker
from .decoding import decode_message
from .stage import Emit, Failure, Incoming, InfrastructureError, Output, Result, Stage
from .transactions import PartitionProducers, TransactionTurns

log = logging.getLogger("prox.runtime")

PRODUCE_BACKOFF_S = (0.1, 5.0)
RETRY_BACKOFF_S = (0.5, 10.0)  # a dependency down (InfrastructureError), or an unexpected error in a batch
UNDECODABLE_BACKOFF_S = (1.0, 30.0)  # a batch no codec here can decode: fetched again until a fix is deployed
HANDLE_ATTEMPTS = 3  # an unexpected error in handling a batch: tries before its records are dead-lettered
REVOKE_DRAIN_S = 5.0
STALL_WARNING_S = 60.0  # Faust's commit livelock detector: warn when a lagging partition commits nothing this long


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, service: "StreamService"):
        self.service = service

    async def on_partitions_revoked(self, revoked):
        await self.service.handle_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned):
        self.service.owned = set(assigned)
        log_event(log, logging.INFO, "partitions assigned", service=self.service.name,
                  partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))


class StreamService:
    def __init__(self, stage: Stage, settings: ServiceSettings):
        self.stage = stage
        self.settings = settings
        self.name = stage.name
        self.roles = {settings.topics.name(role): role for role in stage.accepts}  # input topic -> role
        self.group_id = settings.group_id or f"prox-{stage.name}"
        self.tracker = OffsetTracker()
        self.tasks: set[asyncio.Task] = set()
        self.capacity = asyncio.Event()
        self.stopping = asyncio.Event()
        self.consumer: Optional[AIOKafkaConsumer] = None
        self.producer: Optional[AIOKafkaProducer] = None
        self.joined = False
        self.paused = False
        self.commit_moved_at: dict[TopicPartition, tuple[Optional[int], float, bool]] = {}
        # Partitions this member owns, from the rebalance listener: aiokafka's assignment() still lists revoked
        # partitions until the group has re-joined, and a lag written for one of them would never be updated.
        self.owned: set[TopicPartition] = set()
        self.undecodable_backoff = Backoff(*UNDECODABLE_BACKOFF_S)
        # Exactly-once (settings.exactly_once): a transactional producer per input partition, turns in fetch order.
        self.transactions: Optional[PartitionProducers] = None
        self.turns = TransactionTurns()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        kafka = self.settings.kafka
        common = kafka_client_options(kafka)
        self.http = await start_http(self.settings.http_port, self.is_ready)
        producer = dict(**common, **producer_options(kafka), linger_ms=5,
                        max_request_size=max(1_048_576, self.settings.max_message_bytes * 2))
        if self.settings.exactly_once:
            self.transactions = PartitionProducers({**producer, "enable_idempotence": True}, self.group_id)
        self.producer = AIOKafkaProducer(**producer)
        await self.producer.start()
        await self.stage.start()
        self.consumer = AIOKafkaConsumer(
            **common, group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms, heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            max_poll_interval_ms=kafka.max_poll_interval_ms, max_poll_records=self.settings.batch_size,
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            fetch_max_bytes=max(52_428_800, self.settings.max_message_bytes * 4),
            max_partition_fetch_bytes=max(1_048_576, 2 * self.settings.max_message_bytes + 65_536),
            isolation_level="read_committed" if self.settings.exactly_once else "read_uncommitted",
        )
        self.consumer.subscribe(list(self.roles), listener=_Rebalance(self))
        await self.consumer.start()
        log_event(log, logging.INFO, "service started", service=self.name, group=self.group_id,
                  topics=list(self.roles), http_port=self.settings.http_port)

    def is_ready(self) -> bool:
        return self.joined and self.stage.ready() and not self.stopping.is_set()

    async def run(self) -> None:
        await self.start()
        committer = asyncio.create_task(self._commit_loop())
        try:
            await self._fetch_loop()
        finally:
            await self._shutdown(committer)

    def request_stop(self) -> None:
        self.stopping.set()
        self.capacity.set()

    async def _shutdown(self, committer: asyncio.Task) -> None:
        log_event(log, logging.INFO, "draining", service=self.name, in_flight=self.tracker.in_flight())
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=30)
        committer.cancel()
        await self._commit()
        await self.consumer.stop()
        if self.transactions is not None:
            await self.transactions.close()
        await self.producer.stop()
        await self.stage.close()
        await self.http.cleanup()
        log_event(log, logging.INFO, "service stopped", service=self.name)

    # --- fetching ---------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        while not self.stopping.is_set():
            self._apply_backpressure()
            try:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
            except (UnsupportedCodecError, CorruptRecordException) as exc:
                await self._wait_after_undecodable_fetch(exc)
                continue
            self.undecodable_backoff.reset()
            self.joined = self.joined or bool(self.consumer.assignment())
            records = [record for tp_records in batch.values() for record in tp_records]
            if not records:
                continue
            metrics.BATCH_SIZE.labels(self.name).observe(len(records))
            for record in records:
                self.tracker.add(TopicPartition(record.topic, record.partition), record.offset)
                metrics.DOCUMENTS_IN.labels(self.name, record.topic).inc()
            metrics.IN_FLIGHT.labels(self.name).set(self.tracker.in_flight())
            turns = self._reserve_turns(records) if self.transactions is not None else None
            task = asyncio.create_task(self._handle_guarded(records, time.monotonic(), turns))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _wait_after_undecodable_fetch(self, exc: KafkaError) -> None:
        """A record batch that cannot be decoded here (a codec without its library, a corrupt batch) holds its
        partition at that offset, loudly: skipping it would lose its documents, and no single record of it can
        be dead-lettered. aiokafka raises only once the other partitions' records are handed over, so they go
        on; the commit-stall detector and the lag name the partition."""
        metrics.UNDECODABLE_FETCHES.labels(self.name, type(exc).__name__).inc()
        delay = self.undecodable_backoff.delay()
        log_event(log, logging.ERROR, "a fetched record batch cannot be decoded; its partition waits at it",
                  service=self.name, error_class=type(exc).__name__, error=str(exc)[:500],
                  retry_in_s=round(delay, 2))
        try:  # a stop request ends the wait at once
            await asyncio.wait_for(self.stopping.wait(), delay)
        except asyncio.TimeoutError:
            pass

    def _apply_backpressure(self) -> None:
        """Pause every assigned partition while in-flight work is at its bound; keep polling."""
        full = self.tracker.in_flight() >= self.settings.max_in_flight
        assignment = self.consumer.assignment()
        if full and assignment:
            self.consumer.pause(*assignment)
        elif self.paused and not full:
            self.consumer.resume(*self.consumer.paused())
        self.paused = full
        metrics.PAUSED.labels(self.name).set(int(full))

    # --- processing -------------------------------------------------------------------------
    async def _handle_guarded(self, records: list, fetched_at: float, turns: Optional[dict] = None) -> None:
        """`_handle`, never leaving its offsets pending: an unexpected error is logged, counted and retried;
        if it persists, exactly these records are dead-lettered (reason `processing_error`). With exactly-once,
        this batch's turns are released only here, once it is committed or handed over."""
        try:
            backoff = Backoff(*RETRY_BACKOFF_S)
            for attempt in range(1, HANDLE_ATTEMPTS + 1):
                try:
                    return await self._handle(records, fetched_at, turns)
                except Exception:
                    metrics.UNEXPECTED_ERRORS.labels(self.name).inc()
                    error = _last_error()
                    log_event(log, logging.ERROR, "handling a batch failed", service=self.name, attempt=attempt,
                              records=len(records), error=error)
                await asyncio.sleep(backoff.delay())
            letters = [[self._dead_letter(record, "processing_error", "UnexpectedError", error)] for record in records]
            await self._deliver(records, letters, turns)
            self._complete(records, letters, fetched_at)
        finally:
            for _, turn in (turns or {}).values():
                if not turn.done():
                    turn.set_result(None)

    async def _handle(self, records: list, fetched_at: float, turns: Optional[dict] = None) -> None:
        results = await self._process(records)
        outputs = [self._outputs_of(record, result) for record, result in zip(records, results)]
        await self._deliver(records, outputs, turns)
        self._complete(records, outputs, fetched_at)

    async def _deliver(self, records: list, outputs: list[list[Output]], turns: Optional[dict]) -> None:
        """Every output acknowledged: sent at least once, or (exactly-once) committed per input partition in
        one transaction with the partition's offsets, after the batches fetched before it."""
        if self.transactions is None:
            return await self._produce_all(records, outputs)
        for tp, indices in _indices_by_partition(records).items():
            previous, _ = turns[tp]
            if previous is not None:
                await previous
            partition_outputs = [outputs[i] for i in indices]
            await self._commit_transaction(tp, [records[i] for i in indices], partition_outputs)
            for i, delivered in zip(indices, partition_outputs):
                outputs[i] = delivered

    def _reserve_turns(self, records: list) -> dict:
        return {tp: self.turns.reserve(tp) for tp in _indices_by_partition(records)}

    async def _commit_transaction(self, tp: TopicPartition, records: list, outputs: list[list[Output]]) -> None:
        """Outputs and the next offset of `tp` in one transaction, retried until committed. An output the
        broker refuses as too large becomes that record's dead letter (in the same transaction). A partition
        this member no longer owns is left to its new owner, which redoes the batch from the committed offset."""
        backoff = Backoff(*PRODUCE_BACKOFF_S, jitter=False)
        while tp in self.owned:
            try:
                producer = await self.transactions.producer(tp)
                await producer.begin_transaction()
                too_large = await self._send_in_transaction(producer, outputs)
                if too_large:
                    await producer.abort_transaction()
                    for index, exc in too_large.items():
                        outputs[index] = [self._dead_letter(records[index], "output_too_large", type(exc).__name__,
                                                            str(exc))]
                    continue
                await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, self.group_id)
                await producer.commit_transaction()
                return
            except ProducerFenced:
                await self.transactions.discard(tp)
                if tp in self.owned:
                    _exit_fenced(self.name, tp)
            except KafkaError as exc:
                delay = backoff.delay()
                log_event(log, logging.WARNING, "transaction failed; retrying", service=self.name,
                          partition=f"{tp.topic}:{tp.partition}", error=repr(exc), retry_in_s=delay)
                await self.transactions.discard(tp)  # a new producer aborts what the old one left open
                await asyncio.sleep(delay)
        log_event(log, logging.INFO, "partition revoked before its transaction; its new owner redoes it",
                  service=self.name, partition=f"{tp.topic}:{tp.partition}", records=len(records))

    async def _send_in_transaction(self, producer, outputs: list[list[Output]]) -> dict[int, Exception]:
        """Send every output; returns the records (index → error) whose output is over the broker's limit."""
        sends, too_large = [], {}
        for index, record_outputs in enumerate(outputs):
            for output in record_outputs:
                try:
                    sends.append((index, await producer.send(output.topic, output.value, key=output.key,
                                                             headers=output.headers)))
                except MessageSizeTooLargeError as exc:
                    too_large[index] = exc
        for index, future in sends:
            try:
                await future
            except MessageSizeTooLargeError as exc:
                too_large[index] = exc
        return too_large

    def _complete(self, records: list, outputs: list[list[Output]], fetched_at: float) -> None:
        now = time.monotonic()
        for record, record_outputs in zip(records, outputs):
            self.tracker.complete(TopicPartition(record.topic, record.partition), record.offset)
            metrics.PROCESSING_SECONDS.labels(self.name).observe(now - fetched_at)
            self._count(record_outputs)
        metrics.IN_FLIGHT.labels(self.name).set(self.tracker.in_flight())

    def _decode(self, record) -> Incoming | Failure:
        """The record as its topic's message type; the size limit applies where documents enter (raw)."""
        role = self.roles[record.topic]
        limit = self.settings.max_message_bytes if role == "raw" else None
        message = decode_message(record.value, role, limit)
        return message if isinstance(message, Failure) else Incoming(role, message, record.timestamp)

    async def _process(self, records: list) -> list[Result]:
        """Decode, then the stage's results; a dependency that is down is waited for, never blamed on the
        records."""
        results: list = [self._decode(record) for record in records]
        valid = [index for index, decoded in enumerate(results) if isinstance(decoded, Incoming)]
        for index, result in zip(valid, await self._process_retrying([results[i] for i in valid])):
            results[index] = result
        return results

    async def _process_retrying(self, batch: list[Incoming]) -> list[Result]:
        if not batch:
            return []
        backoff = Backoff(*RETRY_BACKOFF_S)
        while True:
            try:
                return await self._process_isolating(batch)
            except InfrastructureError as exc:
                metrics.INFRASTRUCTURE_RETRIES.labels(self.name).inc()
                delay = backoff.delay()
                log_event(log, logging.WARNING, "dependency unavailable; retrying the batch", service=self.name,
                          records=len(batch), error=str(exc)[:500], retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def _process_isolating(self, batch: list[Incoming]) -> list[Result]:
        try:
            return await self.stage.process(batch)
        except InfrastructureError:
            raise
        except Exception:  # a bug or an unexpected input: isolate the message(s) that cause it
            if len(batch) == 1:
                log.exception("processing failed", extra={"fields": {"service": self.name}})
                return [Failure("processing_error", "ProcessingError", _last_error(), _doc_id(batch[0]))]
            middle = len(batch) // 2
            return await self._process_isolating(batch[:middle]) + await self._process_isolating(batch[middle:])

    def _outputs_of(self, record, result: Result) -> list[Output]:
        if isinstance(result, Failure):
            return [self._dead_letter(record, result.reason, result.error_class, result.error, result.doc_id)]
        return [self._encode(emit) for emit in result]

    def _encode(self, emit: Emit) -> Output:
        message = emit.message
        return Output(topic=self.settings.topics.name(emit.role), key=message.id.encode(),
                      value=encode_for(emit.role, message), outcome=emit.outcome,
                      ingest_time=getattr(message, "ingest_time", None), words=emit.words)

    def _dead_letter(self, record, reason: str, error_class: str, error: str, doc_id=None) -> Output:
        return dead_letter(record, reason=reason, error_class=error_class, error=error,
                           topic=self.settings.topics.dlq, service=self.name,
                           max_payload_bytes=self.settings.dlq_payload_bytes, doc_id=doc_id)

    async def _produce_all(self, records: list, outputs: list[list[Output]]) -> None:
        """Send every output, then wait for all acknowledgements (sends are pipelined)."""
        sends = [(index, output, await self._enqueue(output))
                 for index, record_outputs in enumerate(outputs) for output in record_outputs]
        for index, output, future in sends:
            try:
                await future
            except MessageSizeTooLargeError as exc:
                letter = self._dead_letter(records[index], "output_too_large", type(exc).__name__, str(exc))
                outputs[index] = [letter]
                await self._send_until_acked(letter)
            except KafkaError:
                await self._send_until_acked(output)

    async def _enqueue(self, output: Output) -> asyncio.Future:
        try:
            return await self._send(output)
        except KafkaError as exc:  # raised before queueing, e.g. a message over the request size
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
            return future

    async def _send(self, output: Output) -> asyncio.Future:
        return await self.producer.send(output.topic, output.value, key=output.key, headers=output.headers)

    async def _send_until_acked(self, output: Output) -> None:
        backoff = Backoff(*PRODUCE_BACKOFF_S, jitter=False)
        while True:
            try:
                await (await self._send(output))
                return
            except KafkaError as exc:
                delay = backoff.delay()
                log_event(log, logging.WARNING, "produce failed; retrying", service=self.name,
                          topic=output.topic, error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)

    def _count(self, outputs: list[Output]) -> None:
        now = time.time()
        for output in outputs:
            metrics.DOCUMENTS_OUT.labels(self.name, output.outcome).inc()
            if output.outcome == "dead_letter":
                metrics.DEAD_LETTERS.labels(self.name, output.reason or "unknown").inc()
            if output.ingest_time:
                metrics.END_TO_END_SECONDS.labels(self.name).observe(max(0.0, now - output.ingest_time))
            if output.words:
                metrics.WORDS_KEPT.labels(self.name).inc(output.words)

    # --- committing -------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        """Commit and measure lag every interval; an unexpected error is logged and counted, never the end of
        committing (a dead loop would stall every partition while the service looks healthy)."""
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            try:
                await self._commit()
                await self._update_lag()
            except Exception:
                metrics.UNEXPECTED_ERRORS.labels(self.name).inc()
                log_event(log, logging.ERROR, "committing failed", service=self.name, error=_last_error())

    async def _commit(self, only: Optional[Sequence[TopicPartition]] = None) -> None:
        offsets = self.tracker.committable()
        if only is not None:
            offsets = {tp: offset for tp, offset in offsets.items() if tp in only}
        if not offsets:
            return
        if self.transactions is not None:  # committed with their outputs, in the transactions
            self.tracker.mark_committed(offsets)
            return
        try:
            await self.consumer.commit(offsets)
            self.tracker.mark_committed(offsets)
            metrics.COMMITS.labels(self.name).inc()
        except (CommitFailedError, KafkaError) as exc:  # rebalancing: the next owner re-reads from the last commit
            log_event(log, logging.WARNING, "commit failed", service=self.name, error=repr(exc))

    async def handle_revoked(self, revoked: list[TopicPartition]) -> None:
        """Give in-flight work on revoked partitions a moment to finish, commit it, then let go."""
        self.owned -= set(revoked)
        deadline = time.monotonic() + REVOKE_DRAIN_S
        while self.tracker.in_flight(revoked) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._commit(only=revoked)
        self.tracker.forget(revoked)
        self.turns.forget(revoked)
        if self.transactions is not None:
            await self.transactions.close(revoked)
        for tp in revoked:
            self.commit_moved_at.pop(tp, None)
            metrics.forget_partition(self.name, tp)
        log_event(log, logging.INFO, "partitions revoked", service=self.name,
                  partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in revoked))

    async def _update_lag(self) -> None:
        for tp in list(self.owned):
            if tp not in self.owned:  # revoked while an earlier partition's position was awaited
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await self.consumer.position(tp)
            except KafkaError:
                continue
            if tp not in self.owned:
                continue
            partition = self.tracker.partitions.get(tp)
            committed = partition.committed if partition and partition.committed is not None else position
            if self.transactions is not None and not self.tracker.in_flight([tp]):
                committed = max(committed, position)  # past the commit marker that ends each transaction
            lag = max(0, highwater - committed)
            metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)
            metrics.COMMIT_LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, position - committed))
            self._watch_stall(tp, partition.committed if partition else None, lag)

    def _watch_stall(self, tp: TopicPartition, committed: Optional[int], lag: int) -> None:
        """Commit livelock detector: how long a partition with lag has committed nothing new (warned once)."""
        now = time.monotonic()
        last, since, warned = self.commit_moved_at.get(tp, (committed, now, False))
        if committed != last or lag == 0:
            since, warned = now, False
        stalled = now - since
        metrics.COMMIT_STALLED_SECONDS.labels(self.name, tp.topic, str(tp.partition)).set(stalled)
        if stalled >= STALL_WARNING_S and not warned:
            warned = True
            log_event(log, logging.WARNING, "partition commits nothing while it has lag", service=self.name,
                      partition=f"{tp.topic}:{tp.partition}", lag=lag, stalled_s=round(stalled),
                      in_flight=self.tracker.in_flight([tp]))
        self.commit_moved_at[tp] = (committed, since, warned)


FENCED_EXIT_CODE = 75


def _exit_fenced(service: str, tp: TopicPartition) -> None:
    """Fenced while still owning the partition: a zombie of this member took a transactional id it holds.
    Batches fetched after the fenced one could commit offsets past it, so the only safe way on is the
    crash-only one: exit now, and the restarted member re-reads from the committed offsets."""
    log_event(log, logging.ERROR, "fenced while owning the partition; exiting to re-read from committed offsets",
              service=service, partition=f"{tp.topic}:{tp.partition}")
    logging.shutdown()
    os._exit(FENCED_EXIT_CODE)


def _indices_by_partition(records: list) -> dict[TopicPartition, list[int]]:
    found: dict[TopicPartition, list[int]] = {}
    for index, record in enumerate(records):
        found.setdefault(TopicPartition(record.topic, record.partition), []).append(index)
    return found


def _doc_id(incoming: Incoming) -> str | None:
    return getattr(incoming.message, "id", None)


def _last_error() -> str:
    import traceback

    return traceback.format_exc(limit=3)[-2000:]


def run_service(stage: Stage, settings: ServiceSettings) -> int:
    """Run until SIGTERM/SIGINT, then drain in-flight work and commit."""

    async def main() -> None:
        service = StreamService(stage, settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.request_stop)
        await service.run()

    asyncio.run(main())
    return 0
