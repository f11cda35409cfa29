"""Settings for every command: defaults < YAML file < PROX_* environment < command-line flags.

Each command has one msgspec struct of settings (`ServiceSettings` and its per-service subclasses, the
model server's, the sink's, the tools'). Every leaf has one dotted key (`kafka.bootstrap_servers`), one
environment variable (`PROX_KAFKA_BOOTSTRAP_SERVERS`) and one flag (`--kafka-bootstrap-servers`), all
derived from the field path so they never drift apart, and one description: `Annotated[T, Meta(description=
..., ge=...)]` on the field documents it in `--help` (with its variable and default) and validates it.
"""
from __future__ import annotations

import argparse
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import msgspec
import yaml
from msgspec import Meta

from prox_proto.topics import Topics

def _doc(text: str, **constraints) -> Meta:
    return Meta(description=text, **constraints)


LogLevel = Annotated[str, _doc("DEBUG, INFO, WARNING or ERROR", pattern="^(DEBUG|INFO|WARNING|ERROR)$")]


class KafkaSettings(msgspec.Struct, kw_only=True):
    bootstrap_servers: Annotated[str, _doc("Kafka bootstrap servers, host:port[,host:port]", min_length=1)] = \
        "127.0.0.1:9092"
    security_protocol: Annotated[str, _doc("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                                           pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")] = "PLAINTEXT"
    sasl_mechanism: Annotated[Optional[str], _doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")] = None
    sasl_username: Annotated[Optional[str], _doc("SASL user name")] = None
    sasl_password: Annotated[Optional[str], _doc("SASL password (prefer the environment variable)")] = None
    ssl_cafile: Annotated[Optional[str], _doc("CA bundle that signs the brokers' certificates")] = None
    ssl_certfile: Annotated[Optional[str], _doc("client certificate (mutual TLS)")] = None
    ssl_keyfile: Annotated[Optional[str], _doc("client key (mutual TLS)")] = None
    idempotent: Annotated[bool, _doc(
        "idempotent producer: on for Apache Kafka; the embedded Tansu broker rejects InitProducerId, so "
        "`prox local` turns it off")] = True
    session_timeout_ms: Annotated[int, _doc("consumer group session timeout", gt=0)] = 6000
    heartbeat_interval_ms: Annotated[int, _doc("consumer group heartbeat interval", gt=0)] = 1000
    max_poll_interval_ms: Annotated[int, _doc("longest time between polls before the group evicts", gt=0)] = 300000
    fetch_max_wait_ms: Annotated[int, _doc(
        "how long the broker may hold a fetch with no data (Tansu holds it that long even when data arrives; "
        "aiokafka's 500 ms cost ~130 ms per hop there; Apache Kafka answers early either way)", ge=0)] = 100
    client_id: Annotated[str, _doc("Kafka client id")] = "prox-stream"
    compression_type: Annotated[str, _doc(
        "codec of the batches the project's producers write: none, gzip, snappy, lz4 or zstd (consumers read "
        "every codec whatever this says; benchmarks/results/codecs.md measured the choice)",
        pattern="^(none|gzip|snappy|lz4|zstd)$")] = "zstd"
    producer_batch_bytes: Annotated[int, _doc(
        "most bytes of one producer batch per partition (a codec compresses a batch as a whole; aiokafka's "
        "16 KiB holds about one web page)", ge=1024)] = 1_048_576


class TritonSettings(msgspec.Struct, kw_only=True):
    url: Annotated[str, _doc("Triton gRPC endpoint host:port", min_length=1)] = "127.0.0.1:8001"
    concurrency: Annotated[int, _doc("Triton requests in flight at once", ge=1)] = 4
    timeout_s: Annotated[float, _doc("one Triton request's timeout", gt=0)] = 120.0
    backoff_initial_s: Annotated[float, _doc("first retry delay while Triton is unavailable", gt=0)] = 0.1
    backoff_max_s: Annotated[float, _doc("longest retry delay while Triton is unavailable", gt=0)] = 4.0
    document_attempts: Annotated[int, _doc(
        "tries of one document the healthy server keeps refusing before it is dead-lettered", ge=1)] = 3


class ServiceSettings(msgspec.Struct, kw_only=True):
    """What every streaming service reads: Kafka, topics, its group, batching, limits and health port."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: Topics = msgspec.field(default_factory=Topics)
    group_id: Annotated[Optional[str], _doc("consumer group (default prox-SERVICE)")] = None
    http_port: Annotated[int, _doc("port of /healthz, /readyz and /metrics", ge=0, le=65535)] = 9400
    batch_size: Annotated[int, _doc("records per Kafka fetch (I/O batch)", ge=1)] = 256
    max_in_flight: Annotated[int, _doc("unacknowledged messages before fetching pauses", ge=1)] = 1024
    max_message_bytes: Annotated[int, _doc("raw messages above this size are dead-lettered", ge=1)] = 4_000_000
    dlq_payload_bytes: Annotated[int, _doc("dead-letter payloads are cut to this size", ge=0)] = 65_536
    commit_interval_s: Annotated[float, _doc("how often acknowledged offsets are committed", gt=0)] = 1.0
    exactly_once: Annotated[bool, _doc(
        "exactly-once processing: each input partition's outputs and offsets commit in one Kafka transaction "
        "(a transactional producer per partition, read_committed consumers; needs Apache Kafka). Off: "
        "at-least-once, the sink removes the duplicates a crash leaves (benchmarks/results/exactly_once.md)")] = False
    log_level: LogLevel = "INFO"

    def __post_init__(self) -> None:
        if self.batch_size > self.max_in_flight:
            raise ValueError(f"batch_size {self.batch_size} > max_in_flight {self.max_in_flight}: "
                             "a fetch could never be taken")


class RefinerSettings(ServiceSettings, kw_only=True):
    """The doc- and chunk-refiner: a service plus its Triton client."""

    triton: TritonSettings = msgspec.field(default_factory=TritonSettings)
    model_batch_size: Annotated[int, _doc(
        "documents per Triton request; capped at the model's max_batch_size (the model server's "
        "--triton-max-batch-size, 32 by default)", ge=1)] = 32


class ToolSettings(msgspec.Struct, kw_only=True):
    """The tools (produce, consume, topics, dlq): where Kafka is and what the topics are called."""

    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: Topics = msgspec.field(default_factory=Topics)
    log_level: LogLevel = "INFO"


SettingPath = tuple[str, ...]


def leaves(struct_type: type, root: SettingPath = ()) -> Iterator[tuple[SettingPath, Any, str]]:
    """(path, default, description) of every leaf setting, depth first; a path is `root` + its path inside
    the struct."""
    instance, hints = struct_type(), typing.get_type_hints(struct_type, include_extras=True)
    for name in struct_type.__struct_fields__:
        value = getattr(instance, name)
        if isinstance(value, msgspec.Struct):
            yield from leaves(type(value), root + (name,))
        else:
            yield root + (name,), value, _description(hints.get(name)) or name.replace("_", " ")


def _description(hint) -> str:
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, Meta) and meta.description:
            return meta.description
    return ""


def env_name(path: SettingPath) -> str:
    return "PROX_" + "_".join(path).upper()


def flag_name(path: SettingPath) -> str:
    return "--" + "-".join(path).replace("_", "-")


def _dest(path: SettingPath) -> str:
    return "setting__" + "__".join(path)


def add_settings_arguments(parser: argparse.ArgumentParser, struct_type: type = ServiceSettings,
                           root: SettingPath = ()) -> None:
    """One flag per setting of `struct_type`; `--help` shows its description, environment variable and default.

    `root` places the struct in the settings tree: `prox execute` reads `ExecutorSettings` at ("executor",),
    so its `--max-errors` is the executor service's `PROX_EXECUTOR_MAX_ERRORS` (YAML `executor.max_errors`)."""
    if not any("--config" in action.option_strings for action in parser._actions):
        parser.add_argument("--config", default=os.environ.get("PROX_CONFIG"), help="YAML settings file [PROX_CONFIG]")
    group = parser.add_argument_group("settings (flag, environment variable, YAML key)")
    for path, default, text in leaves(struct_type, root):
        key = ".".join(path)
        group.add_argument(flag_name(path[len(root):]), dest=_dest(path), default=None, metavar="V",
                           help=f"{text} [{env_name(path)}; yaml {key}; default {default!r}]")


def _set(tree: dict, path: SettingPath, value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def _parse_scalar(text: str) -> Any:
    """Environment and flag values are YAML scalars: `true`, `3`, `0.5`, `null`, or a string."""
    value = yaml.safe_load(text) if text.strip() else ""
    return text if isinstance(value, (dict, list)) else value


def load_settings(
    args: Optional[argparse.Namespace] = None,
    environ: Optional[dict[str, str]] = None,
    overrides: Optional[dict[str, Any]] = None,
    struct_type: type = ServiceSettings,
    root: SettingPath = (),
):
    """Resolve the settings of `struct_type` (at `root` of the settings tree; see `add_settings_arguments`)."""
    environ = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    config_path = getattr(args, "config", None) or environ.get("PROX_CONFIG")
    if config_path:
        tree = yaml.safe_load(Path(config_path).read_text()) or {}
    for path, _, _ in leaves(struct_type, root):
        if env_name(path) in environ:
            _set(tree, path, _parse_scalar(environ[env_name(path)]))
        flag_value = getattr(args, _dest(path), None) if args is not None else None
        if flag_value is not None:
            _set(tree, path, _parse_scalar(flag_value))
    for key, value in (overrides or {}).items():
        _set(tree, root + tuple(key.split(".")), value)
    for part in root:
        tree = tree.get(part) or {}
    return _convert(tree, struct_type)


def _convert(tree: dict[str, Any], struct_type: type):
    try:
        return msgspec.convert(tree, struct_type, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise SystemExit(f"prox: invalid settings: {exc}") from None


def kafka_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka connection options (security included) shared by consumers, producers and admin."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
        "client_id": kafka.client_id,
    }
    if kafka.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=kafka.sasl_mechanism or "PLAIN",
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password,
        )
    if kafka.security_protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
        )
    return options
