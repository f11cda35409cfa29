"""The runtime without a broker (Bytewax-style testing source and sink): in-memory records, a fake producer.

Covers what must never lose or misfile a record: bisection of a poison batch, output over the broker's size
limit, a dependency that is down, an unexpected error while handling a batch, and the commit-stall detector.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (CorruptRecordException, KafkaConnectionError, MessageSizeTooLargeError,
                             UnsupportedCodecError)

import prox.common.runtime as runtime
from prox.common import metrics
from prox.common.config import ServiceSettings
from prox.common.runtime import StreamService
from prox.common.stage import Emit, Failure, InfrastructureError
from prox_proto import DeadLetter, RawDocument, RefinedDocument, decode_json, encode_json

TOPIC = ServiceSettings().topics.raw
OUT = ServiceSettings().topics.refined


def records(count: int, partition: int = 0) -> list:
    """The testing source: raw documents v0, v1, ... as the broker would hand them over."""
    return [SimpleNamespace(topic=TOPIC, partition=partition, offset=offset, key=f"k{offset}".encode(),
                            value=encode_json(RawDocument(id=f"k{offset}", text=f"v{offset}")), timestamp=0,
                            headers=()) for offset in range(count)]


def texts(values: list[bytes]) -> list[str]:
    return [decode_json(value, RefinedDocument).text for value in values]


class FakeProducer:
    """The testing sink: keeps every acknowledged message; `reject` decides per message what goes wrong."""

    def __init__(self, reject=lambda topic, value: None):
        self.sent: list[tuple[str, bytes]] = []
        self.reject = reject

    async def send(self, topic, value, key=None, headers=None):
        future = asyncio.get_running_loop().create_future()
        error = self.reject(topic, value)
        if error is None:
            self.sent.append((topic, value))
            future.set_result(None)
        else:
            future.set_exception(error)
        return future

    def values(self, topic: str) -> list[bytes]:
        return [value for sent_topic, value in self.sent if sent_topic == topic]


class EchoStage:
    """Emits each raw document as refined; raises for poison texts, or as `fail_with` says."""

    name = "echo"
    accepts = {"raw": RawDocument}

    def __init__(self, poison=(), fail_with=None):
        self.poison, self.fail_with, self.calls = set(poison), list(fail_with or []), 0

    async def process(self, batch):
        self.calls += 1
        if self.fail_with:
            raise self.fail_with.pop(0)
        if any(incoming.message.text in self.poison for incoming in batch):
            raise ValueError("poison in batch")
        return [[Emit("refined", RefinedDocument(id=incoming.message.id, text=incoming.message.text, dropped=False),
                      "refined")] for incoming in batch]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(runtime, "RETRY_BACKOFF_S", (0.001, 0.002))
    monkeypatch.setattr(runtime, "PRODUCE_BACKOFF_S", (0.001, 0.002))


def service_for(stage, producer, batch: list) -> StreamService:
    service = StreamService(stage, ServiceSettings())
    service.producer = producer
    for record in batch:
        service.tracker.add(TopicPartition(record.topic, record.partition), record.offset)
    return service


def committable(service) -> dict:
    return {tp.partition: offset for tp, offset in service.tracker.committable().items()}


def dead_letters(producer) -> list[DeadLetter]:
    return [decode_json(value, DeadLetter) for value in producer.values(ServiceSettings().topics.dlq)]


async def test_a_poison_record_is_bisected_out_and_the_rest_flows():
    batch, producer = records(8), FakeProducer()
    service = service_for(EchoStage(poison={"v5"}), producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert texts(producer.values(OUT)) == [f"v{i}" for i in range(8) if i != 5]
    assert [(letter.reason, letter.offset) for letter in dead_letters(producer)] == [("processing_error", 5)]
    assert committable(service) == {0: 8}


async def test_output_over_the_broker_limit_becomes_a_dead_letter_for_that_record_only():
    too_large = lambda topic, value: MessageSizeTooLargeError() if b'"v2"' in value and topic == OUT else None  # noqa: E731
    batch, producer = records(4), FakeProducer(too_large)
    service = service_for(EchoStage(), producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert texts(producer.values(OUT)) == ["v0", "v1", "v3"]
    assert [(letter.reason, letter.offset) for letter in dead_letters(producer)] == [("output_too_large", 2)]
    assert committable(service) == {0: 4}


async def test_a_dependency_that_is_down_is_waited_for_and_nothing_is_dead_lettered():
    down = [InfrastructureError("Triton unavailable")] * 5
    batch, producer = records(3), FakeProducer()
    stage = EchoStage(fail_with=down)
    service = service_for(stage, producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert stage.calls == 6 and texts(producer.values(OUT)) == ["v0", "v1", "v2"]
    assert dead_letters(producer) == [] and committable(service) == {0: 3}


async def test_a_broker_error_on_produce_is_retried_until_acknowledged():
    failures = iter([KafkaConnectionError(), KafkaConnectionError()])
    flaky = lambda topic, value: next(failures, None) if b'"v1"' in value else None  # noqa: E731
    batch, producer = records(3), FakeProducer(flaky)
    service = service_for(EchoStage(), producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert sorted(texts(producer.values(OUT))) == ["v0", "v1", "v2"] and committable(service) == {0: 3}


async def test_an_unexpected_error_in_handling_is_retried_and_the_partition_commits():
    batch, producer = records(4), FakeProducer()
    service = service_for(EchoStage(), producer, batch)
    original, calls = service._outputs_of, []

    def fails_once(record, result):
        calls.append(record.offset)
        if len(calls) == 1:
            raise RuntimeError("bug outside the stage")
        return original(record, result)

    service._outputs_of = fails_once
    before = metrics.UNEXPECTED_ERRORS.labels("echo")._value.get()
    await service._handle_guarded(batch, 0.0)
    assert metrics.UNEXPECTED_ERRORS.labels("echo")._value.get() == before + 1
    assert texts(producer.values(OUT)) == ["v0", "v1", "v2", "v3"] and committable(service) == {0: 4}


async def test_an_error_that_persists_dead_letters_exactly_those_records():
    batch, producer = records(3), FakeProducer()
    service = service_for(EchoStage(), producer, batch)

    def always_fails(record, result):
        raise RuntimeError("bug outside the stage")

    service._outputs_of = always_fails
    await service._handle_guarded(batch, 0.0)
    letters = dead_letters(producer)
    assert [(letter.reason, letter.offset) for letter in letters] == [("processing_error", i) for i in range(3)]
    assert "bug outside the stage" in letters[0].error and committable(service) == {0: 3}


async def test_failures_returned_by_the_stage_go_to_the_dead_letter_topic_with_their_reason():
    class Refusing(EchoStage):
        async def process(self, batch):
            return [Failure("invalid_message", "ValidationError", "no text") for _ in batch]

    batch, producer = records(2), FakeProducer()
    service = service_for(Refusing(), producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert [letter.reason for letter in dead_letters(producer)] == ["invalid_message"] * 2


async def test_the_runtime_decodes_for_the_stage_and_dead_letters_what_does_not_decode():
    batch, producer = records(3), FakeProducer()
    batch[1].value = b'{"id": "k1"}'  # no text: not a RawDocument
    batch[2].value = b"{not json"
    stage = EchoStage()
    service = service_for(stage, producer, batch)
    await service._handle_guarded(batch, 0.0)
    assert texts(producer.values(OUT)) == ["v0"]
    assert [(letter.reason, letter.offset) for letter in dead_letters(producer)] == [
        ("invalid_message", 1), ("undecodable", 2)]


def test_the_stall_detector_measures_time_without_commit_progress_while_lagging(monkeypatch):
    clock = iter([100.0, 130.0, 170.0, 171.0, 200.0])
    monkeypatch.setattr(runtime.time, "monotonic", lambda: next(clock))
    service = StreamService(EchoStage(), ServiceSettings())
    tp = TopicPartition(TOPIC, 0)
    gauge = metrics.COMMIT_STALLED_SECONDS.labels("echo", TOPIC, "0")
    service._watch_stall(tp, committed=10, lag=5)   # t=100: first look
    service._watch_stall(tp, committed=10, lag=5)   # t=130: stuck 30 s
    assert gauge._value.get() == 30.0
    service._watch_stall(tp, committed=10, lag=5)   # t=170: stuck 70 s, past the warning
    assert gauge._value.get() == 70.0 and service.commit_moved_at[tp][2]
    service._watch_stall(tp, committed=12, lag=5)   # t=171: the commit moved
    assert gauge._value.get() == 0.0
    service._watch_stall(tp, committed=12, lag=0)   # t=200: nothing to commit is no stall
    assert gauge._value.get() == 0.0


class FakeConsumer:
    """What the lag and commit code asks of aiokafka. Like aiokafka, `assignment()` still lists revoked
    partitions until the group has re-joined; `position` of `slow` waits for `answer`."""

    def __init__(self, tps, highwater=10, position=7, slow=None, commit_errors=()):
        self.tps, self.slow, self.answer = set(tps), slow, asyncio.Event()
        self.highwater_of, self.position_of = highwater, position
        self.commit_errors, self.commits = list(commit_errors), []

    def assignment(self):
        return set(self.tps)

    def highwater(self, tp):
        assert tp in self.tps, "Partition is not assigned"
        return self.highwater_of

    async def position(self, tp):
        if tp == self.slow:
            await self.answer.wait()
        return self.position_of

    async def commit(self, offsets):
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.commits.append(offsets)


async def until(condition, timeout_s: float = 10) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout_s)


def lag_series(service) -> dict[int, float]:
    return {int(sample.labels["partition"]): sample.value
            for metric in metrics.CONSUMER_LAG.collect() for sample in metric.samples
            if sample.labels["service"] == service.name}


async def test_a_partition_revoked_while_lag_is_measured_leaves_no_lag_behind():
    tps = [TopicPartition(TOPIC, partition) for partition in (0, 1)]
    service = StreamService(EchoStage(), ServiceSettings())
    service.consumer = FakeConsumer(tps, slow=tps[0])
    await runtime._Rebalance(service).on_partitions_assigned(tps)
    measuring = asyncio.create_task(service._update_lag())
    await asyncio.sleep(0.01)  # waiting for partition 0's position
    await service.handle_revoked(tps)
    service.consumer.answer.set()
    await measuring
    await service._update_lag()  # the group has not re-joined yet: aiokafka still lists both
    assert lag_series(service) == {}
    await runtime._Rebalance(service).on_partitions_assigned(tps[1:])
    await service._update_lag()
    assert lag_series(service) == {1: 3.0}
    await service.handle_revoked(tps[1:])


async def test_committing_goes_on_after_an_unexpected_error():
    tp = TopicPartition(TOPIC, 0)
    service = StreamService(EchoStage(), ServiceSettings(commit_interval_s=0.001))
    service.consumer = FakeConsumer([tp], commit_errors=[RuntimeError("a bug in a dependency")])
    for offset in range(3):
        service.tracker.add(tp, offset)
    before = metrics.UNEXPECTED_ERRORS.labels("echo")._value.get()
    committing = asyncio.create_task(service._commit_loop())
    service.tracker.complete(tp, 0)
    await until(lambda: service.consumer.commits)
    service.tracker.complete(tp, 1)
    await until(lambda: service.tracker.partitions[tp].committed == 2)
    committing.cancel()
    assert service.consumer.commits == [{tp: 1}, {tp: 2}]
    assert metrics.UNEXPECTED_ERRORS.labels("echo")._value.get() == before + 1


class UndecodableConsumer:
    """The testing source for the fetch loop: each getmany answer in turn, an exception raised where given."""

    def __init__(self, answers, service):
        self.answers, self.service = list(answers), service

    def assignment(self):
        return {TopicPartition(TOPIC, 0)}

    def pause(self, *tps):
        pass

    def resume(self, *tps):
        pass

    def paused(self):
        return set()

    async def getmany(self, timeout_ms, max_records):
        if not self.answers:
            self.service.request_stop()
            return {}
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {TopicPartition(TOPIC, 0): answer}


@pytest.mark.parametrize("error", [UnsupportedCodecError("Libraries for snappy compression codec not found"),
                                   CorruptRecordException("Invalid CRC - prox.raw-0")])
async def test_a_batch_that_cannot_be_decoded_is_counted_and_waited_at_never_an_exit(monkeypatch, error):
    monkeypatch.setattr(runtime, "UNDECODABLE_BACKOFF_S", (0.001, 0.002))
    batch, producer = records(3), FakeProducer()
    service = StreamService(EchoStage(), ServiceSettings())
    service.producer = producer
    service.consumer = UndecodableConsumer([error, error, batch], service)
    counter = metrics.UNDECODABLE_FETCHES.labels("echo", type(error).__name__)
    before = counter._value.get()
    await service._fetch_loop()  # returns only when the testing source has run dry and asked to stop
    await asyncio.gather(*service.tasks)
    assert counter._value.get() == before + 2
    assert texts(producer.values(OUT)) == ["v0", "v1", "v2"]
    assert dead_letters(producer) == []


class FakeTransactionalProducer:
    """The testing sink of exactly-once: outputs become visible only when their transaction commits."""

    def __init__(self, tp, log, reject=lambda topic, value: None):
        self.tp, self.log, self.reject, self.pending = tp, log, reject, []

    async def begin_transaction(self):
        self.pending = []

    async def send(self, topic, value, key=None, headers=None):
        error = self.reject(topic, value)
        if error is not None:
            raise error
        self.pending.append((topic, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send_offsets_to_transaction(self, offsets, group_id):
        self.offsets = offsets

    async def commit_transaction(self):
        self.log.append((self.tp.partition, self.offsets[self.tp], list(self.pending)))

    async def abort_transaction(self):
        self.pending = []


class FakePartitionProducers:
    def __init__(self, reject=lambda topic, value: None):
        self.committed, self.reject, self.discarded = [], reject, []

    async def producer(self, tp):
        return FakeTransactionalProducer(tp, self.committed, self.reject)

    async def discard(self, tp):
        self.discarded.append(tp)

    async def close(self, tps=None):
        pass


def exactly_once_service(stage, producers) -> StreamService:
    service = StreamService(stage, ServiceSettings(exactly_once=True))
    service.transactions = producers
    service.owned = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}
    return service


class SlowFirstStage(EchoStage):
    """The first batch it sees finishes last."""

    async def process(self, batch):
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(0.05)
        return await super().process(batch)


async def test_exactly_once_commits_outputs_with_offsets_per_partition_in_fetch_order():
    producers = FakePartitionProducers()
    service = exactly_once_service(SlowFirstStage(), producers)
    first, second = records(4)[:2], records(4)[2:]
    for record in first + second:
        service.tracker.add(TopicPartition(record.topic, record.partition), record.offset)
    turns = [service._reserve_turns(batch) for batch in (first, second)]
    await asyncio.gather(service._handle_guarded(first, 0.0, turns[0]), service._handle_guarded(second, 0.0, turns[1]))
    assert [(partition, offset, texts([v for _, v in sent])) for partition, offset, sent in producers.committed] == [
        (0, 2, ["v0", "v1"]), (0, 4, ["v2", "v3"])]  # the slow first batch still commits first
    assert committable(service) == {0: 4}


async def test_exactly_once_an_output_over_the_limit_is_dead_lettered_in_the_same_transaction():
    too_large = lambda topic, value: MessageSizeTooLargeError() if b'"v1"' in value and topic == OUT else None  # noqa: E731
    producers = FakePartitionProducers(too_large)
    service = exactly_once_service(EchoStage(), producers)
    batch = records(3)
    await service._handle_guarded(batch, 0.0, service._reserve_turns(batch))
    [(partition, offset, sent)] = producers.committed
    assert (partition, offset) == (0, 3)
    assert texts([v for topic, v in sent if topic == OUT]) == ["v0", "v2"]
    letters = [decode_json(v, DeadLetter) for topic, v in sent if topic == ServiceSettings().topics.dlq]
    assert [(letter.reason, letter.offset) for letter in letters] == [("output_too_large", 1)]


async def test_exactly_once_a_revoked_partition_is_left_to_its_new_owner():
    producers = FakePartitionProducers()
    service = exactly_once_service(EchoStage(), producers)
    service.owned = {TopicPartition(TOPIC, 1)}
    batch = records(2)  # partition 0, no longer owned
    await service._handle_guarded(batch, 0.0, service._reserve_turns(batch))
    assert producers.committed == []
