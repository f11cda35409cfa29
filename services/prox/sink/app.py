"""The faust app: an agent over `prox.refined` (and `prox.dropped`), the id table, timers and hooks.

faust is used for what it is good at here: the agent and its consumer group (partition assignment,
fetching, offset commits of acknowledged events), and a Table whose changelog topic carries the id
index across restarts and rebalances. faust's automatic acknowledgement is off (`stream.noack()`):
`SinkCore` acknowledges records when their shard is durable (see the commit rule in core.py), and
faust commits only acknowledged offsets (contiguous prefix per partition).

Two hooks keep that rule across lifecycle events: before partitions are revoked and when the app
stops, the open shards are closed (made durable, acknowledged) and the offsets committed, so the next
owner does not write them again. `stream_wait_empty` is off: faust must not wait for events that only
a shard close acknowledges.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from types import SimpleNamespace
from typing import Optional

import faust

from ..common import metrics
from ..common.config import KafkaSettings
from ..common.dlq import dead_letter
from ..common.http import start_http
from ..common.logs import log_event
from .core import SERVICE, SinkCore
from .settings import SinkSettings

log = logging.getLogger("prox.sink")

TABLE_NAME = "ids"
EXPIRE_INTERVAL_S = 60.0
CRASH_EXIT_CODE = 70


class FaustIdTable:
    """The IdTable interface over a faust Table: the local store for reads, explicit changelog sends
    with the source record's partition (shard closes happen outside one event's context)."""

    def __init__(self, table):
        self.table = table

    def get(self, key):
        return self.table.data.get(key)

    def put(self, key, value, partition):
        self.table.data[key] = value
        return self.table.send_changelog(partition, key, value)

    def delete(self, key, partition):
        try:
            del self.table.data[key]
        except KeyError:
            pass
        return self.table.send_changelog(partition, key, None, value_serializer="raw")

    def items(self):
        return list(self.table.data.items())

    def __len__(self):
        return len(self.table.data)


def faust_credentials(kafka: KafkaSettings):
    protocol = kafka.security_protocol.upper()
    context = None
    if protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        context = create_ssl_context(cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=kafka.sasl_username, password=kafka.sasl_password,
                                     mechanism=kafka.sasl_mechanism or "PLAIN", ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class SinkApp(faust.App):
    core: Optional[SinkCore] = None
    lag_reported: frozenset = frozenset()  # input partitions whose lag `update_lag` last reported

    async def _on_partitions_revoked(self, revoked) -> None:
        # Make the open shards durable and commit before faust hands the partitions to another member.
        if self.core is not None and not self.should_stop:
            await _guarded(self.core.close_all())
            self.core.forget_positions()
            try:
                await self.consumer.commit()
            except Exception as exc:  # the next owner re-reads them; the id table marks them duplicates
                log_event(log, logging.WARNING, "commit before revocation failed", service=SERVICE, error=repr(exc))
        await super()._on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        if self.core is not None:
            await _guarded(self.core.close_all())
            try:
                await self.consumer.commit()
            except Exception as exc:  # not started / not assigned: nothing acknowledged to commit
                log_event(log, logging.WARNING, "final commit failed", service=SERVICE, error=repr(exc))
        await super().on_stop()


async def _guarded(awaitable):
    """A failure in the shard protocol ends the process (crash-only: nothing unacknowledged is lost,
    the supervisor restarts it, the unfinished shard is read again)."""
    try:
        return await awaitable
    except Exception:
        log.exception("sink failed; exiting", extra={"fields": {"service": SERVICE}})
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)


def build_app(settings: SinkSettings, partitions: int) -> SinkApp:
    kafka = settings.kafka
    app = SinkApp(
        settings.group,
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",") if server.strip()],
        broker_credentials=faust_credentials(kafka),
        broker_client_id=kafka.client_id,
        broker_session_timeout=kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000,
        broker_max_poll_interval=kafka.max_poll_interval_ms / 1000,
        broker_commit_interval=settings.commit_interval_s,
        broker_commit_every=1_000_000_000,  # commit on the interval and after shard closes only
        consumer_auto_offset_reset="earliest",
        # faust fixes fetch_max_wait_ms at 1500 and Tansu may hold a fetch that long: take big bites.
        consumer_max_fetch_size=settings.sink.fetch_partition_bytes,
        producer_acks=-1,
        producer_compression_type=None if kafka.compression_type == "none" else kafka.compression_type,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=settings.sink.changelog_replication_factor,
        web_enabled=False,
        table_cleanup_interval=EXPIRE_INTERVAL_S,
    )
    # str keys and list values: both serialised as JSON in the changelog.
    table = app.Table(TABLE_NAME, default=None, partitions=partitions, key_type=str)

    async def flush_table(sends: list) -> None:
        await app.producer.flush()
        if sends:
            await asyncio.gather(*sends)

    async def send_dead_letter(topic, partition, offset, key, value, reason, exc) -> None:
        record = SimpleNamespace(topic=topic, partition=partition, offset=offset, key=key, value=value)
        letter = dead_letter(record, reason=reason, error_class=type(exc).__name__, error=str(exc),
                             topic=settings.topics.dlq, service=SERVICE, max_payload_bytes=65_536)
        await app.producer.send_and_wait(letter.topic, letter.key, letter.value, None, None, letter.headers)

    def committed(tp) -> Optional[int]:  # faust's committed offset (next to read) of an assigned partition
        return getattr(app.consumer, "_committed_offset", {}).get(tp) or None

    core = SinkCore(settings, FaustIdTable(table), flush_table=flush_table, commit=lambda: app.consumer.commit(),
                    dead_letter=send_dead_letter, committed=committed)
    app.core = core
    source = app.topic(*core.kinds, key_serializer="raw", value_serializer="raw")

    @app.agent(source, name="sink")
    async def sink(stream):
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            await _guarded(core.handle(message.topic, message.partition, message.offset, message.key,
                                       event.value, lambda e=event: manual.ack(e)))

    @app.timer(1.0)
    async def tick():
        await _guarded(core.tick())
        update_lag(app, core)

    @app.timer(EXPIRE_INTERVAL_S)
    async def expire():
        removed = core.expire()
        if removed:
            log_event(log, logging.INFO, "id table entries expired", service=SERVICE, removed=removed)

    @app.task
    async def serve_http():
        app.http_runner = await start_http(settings.http_port, lambda: is_ready(app))

    return app


def is_ready(app: SinkApp) -> bool:
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    recovered = recovery is None or recovery.completed.is_set()
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:
        assigned = False
    return bool(app.started and recovered and assigned and not app.rebalancing and not app.should_stop)


def update_lag(app: SinkApp, core: SinkCore) -> None:
    """Lag of every assigned input partition; the series of one another replica took over is removed, not left
    at its last value."""
    try:
        assignment = app.consumer.assignment()
    except Exception:
        return
    committed_offsets = getattr(app.consumer, "_committed_offset", {})
    owned = {tp for tp in assignment if tp.topic in core.kinds}  # not the changelog partitions the table reads
    for tp in owned:
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:
            continue
        if highwater is None:
            continue
        committed = max(core.durable.get((tp.topic, tp.partition), 0), committed_offsets.get(tp) or 0)
        metrics.CONSUMER_LAG.labels(SERVICE, tp.topic, str(tp.partition)).set(max(0, highwater - committed))
    for tp in app.lag_reported - owned:
        metrics.forget_partition(SERVICE, tp)
    app.lag_reported = owned


async def topic_partitions(kafka: KafkaSettings, topic: str, timeout_s: float = 120.0) -> int:
    """Partitions of the input topic (the id table is co-partitioned with it); waits for it to exist."""
    from aiokafka.client import AIOKafkaClient

    from ..common.config import kafka_client_options

    deadline = time.monotonic() + timeout_s
    client = AIOKafkaClient(**kafka_client_options(kafka))
    await client.bootstrap()
    try:
        while True:
            cluster = await client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic)
            if partitions:
                return len(partitions)
            if time.monotonic() > deadline:
                raise SystemExit(f"prox sink: topic {topic!r} does not exist (create it with `prox topics create`)")
            await asyncio.sleep(1.0)
    finally:
        await client.close()
