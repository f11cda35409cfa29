"""Every Prometheus series ProX Stream exports, defined once for all services.

Dashboards and alert rules use exactly these names (the ops tests check them against live scrapes).
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CALL_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)

# --- streaming services -------------------------------------------------------------------
DOCUMENTS_IN = Counter("prox_documents_in", "Messages consumed", ["service", "topic"])
DOCUMENTS_OUT = Counter(
    "prox_documents_out", "Documents produced, by outcome (programmed|kept|refined|dropped|dead_letter)",
    ["service", "outcome"],
)
WORDS_IN = Counter("prox_words_in", "Words in documents entering the stage", ["service"])
WORDS_KEPT = Counter("prox_words_kept", "Words in documents leaving the stage as kept/refined", ["service"])
DEAD_LETTERS = Counter("prox_dead_letters", "Messages sent to the dead-letter topic", ["service", "reason"])
BATCH_SIZE = Histogram("prox_batch_size", "Messages per fetched batch", ["service"], buckets=BATCH_BUCKETS)
PROCESSING_SECONDS = Histogram(
    "prox_processing_seconds", "Time from fetch to acknowledged output, per message", ["service"],
    buckets=LATENCY_BUCKETS,
)
END_TO_END_SECONDS = Histogram(
    "prox_end_to_end_seconds", "Time from ingest (producer/broker timestamp) to output", ["service"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("prox_in_flight", "Messages fetched but not yet acknowledged", ["service"])
PAUSED = Gauge("prox_consumer_paused", "1 while fetching is paused for back-pressure", ["service"])
CONSUMER_LAG = Gauge("prox_consumer_lag", "High watermark minus position", ["service", "topic", "partition"])
COMMIT_LAG = Gauge(
    "prox_commit_lag", "Consumed offsets not yet committed (position minus committed)",
    ["service", "topic", "partition"],
)
COMMITS = Counter("prox_commits", "Offset commits", ["service"])
COMMIT_STALLED_SECONDS = Gauge(
    "prox_commit_stalled_seconds",
    "Seconds the committed offset has not moved while the partition has lag (0 when it moves or has none)",
    ["service", "topic", "partition"],
)
UNEXPECTED_ERRORS = Counter(
    "prox_unexpected_errors", "Batches whose handling raised an unexpected exception (retried, then dead-lettered)",
    ["service"],
)
UNDECODABLE_FETCHES = Counter(
    "prox_undecodable_fetches",
    "Fetches that returned a record batch the consumer cannot decode (an unknown codec, a bad CRC); the "
    "partition waits at that batch, nothing is skipped", ["service", "error"],
)
INFRASTRUCTURE_RETRIES = Counter(
    "prox_infrastructure_retries", "Batches retried because a dependency was unavailable", ["service"],
)

# --- Triton client ------------------------------------------------------------------------
TRITON_REQUEST_SECONDS = Histogram(
    "prox_triton_request_seconds", "Latency of one Triton inference request", ["model"], buckets=LATENCY_BUCKETS
)
TRITON_BATCH_SIZE = Histogram("prox_triton_batch_size", "Documents per Triton request", ["model"], buckets=BATCH_BUCKETS)
TRITON_ERRORS = Counter(
    "prox_triton_errors",
    "Triton request errors by kind (the gRPC status, see prox.refiners.triton_client.STATUS_MEANING)",
    ["model", "kind"],
)
TRITON_RETRIES = Counter("prox_triton_retries", "Triton requests retried after a transient error", ["model"])

# --- executor -----------------------------------------------------------------------------
EXECUTOR_ERRORS = Counter("prox_executor_errors", "Program statement errors by kind", ["level", "kind"])
EXECUTOR_CALLS = Histogram("prox_executor_calls", "Calls applied per program", ["level"], buckets=CALL_BUCKETS)
EXECUTOR_PROGRAMS = Counter(
    "prox_executor_programs", "Programs executed, by level and outcome (kept|edited|dropped|ignored)",
    ["level", "outcome"],
)
EXECUTOR_LINES_REMOVED = Counter("prox_executor_lines_removed", "Lines removed by chunk programs", [])

# --- sink (prox service sink) ------------------------------------------------------------
SINK_SHARDS = Counter("prox_sink_shards", "Shards published (durable, in the manifest)", ["service", "kind"])
SINK_ROWS = Counter("prox_sink_rows", "Rows written into published shards", ["service", "kind"])
SINK_BYTES = Counter("prox_sink_bytes", "Bytes of published shards (compressed, on storage)", ["service", "kind"])
SINK_DUPLICATES = Counter("prox_sink_duplicates_dropped", "Records not written: their id is already in a shard",
                          ["service", "kind"])
SINK_OPEN_SHARD_AGE = Gauge("prox_sink_open_shard_age_seconds", "Age of the open shard (0 when none)",
                            ["service", "kind"])
SINK_OPEN_SHARD_ROWS = Gauge("prox_sink_open_shard_rows", "Rows in the open shard", ["service", "kind"])
SINK_LAST_SHARD = Gauge("prox_sink_last_shard_closed_timestamp_seconds",
                        "Unix time the last shard was published (process start until the first)", ["service", "kind"])
SINK_ID_TABLE = Gauge("prox_sink_id_table_entries", "Ids in the de-duplication table (local partitions)", ["service"])

PARTITION_GAUGES = (CONSUMER_LAG, COMMIT_LAG, COMMIT_STALLED_SECONDS)  # labelled (service, topic, partition)


def forget_partition(service: str, tp) -> None:
    """Remove a partition's series once this member no longer owns it: left alone, they keep their last value."""
    for gauge in PARTITION_GAUGES:
        try:
            gauge.remove(service, tp.topic, str(tp.partition))
        except KeyError:
            pass
