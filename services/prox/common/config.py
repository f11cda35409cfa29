"""Settings for every service: defaults < YAML file < PROX_* environment < command-line flags.

Every leaf setting has one dotted key (`kafka.bootstrap_servers`), one environment variable
(`PROX_KAFKA_BOOTSTRAP_SERVERS`) and one flag (`--kafka-bootstrap-servers`), all derived from the
field path, so the three can never drift apart.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Iterator, Optional

import msgspec
import yaml

from prox_proto.topics import Topics

from ..executor.execute import ExecutorOptions


class KafkaSettings(msgspec.Struct, kw_only=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: Optional[str] = None  # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
    sasl_username: Optional[str] = None
    sasl_password: Optional[str] = None
    ssl_cafile: Optional[str] = None
    ssl_certfile: Optional[str] = None
    ssl_keyfile: Optional[str] = None
    # On for Apache Kafka; the embedded Tansu broker rejects InitProducerId, so `prox local` turns it off.
    idempotent: bool = True
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300000
    # How long the broker may hold a fetch with no data. Tansu holds it that long even when data arrives
    # meanwhile (aiokafka's default 500 ms cost ~130 ms per hop); Apache Kafka answers early either way.
    fetch_max_wait_ms: int = 100
    client_id: str = "prox-stream"


_EXECUTOR = ExecutorOptions()  # the executor's own defaults are the single source of these values


class ExecutorSettings(msgspec.Struct, kw_only=True):
    max_errors: int = _EXECUTOR.max_errors
    min_keep_ratio: float = _EXECUTOR.min_keep_ratio
    min_words: int = _EXECUTOR.min_words
    deletion_only: bool = _EXECUTOR.deletion_only
    max_growth: Optional[float] = _EXECUTOR.max_growth
    keep_threshold: Optional[float] = _EXECUTOR.keep_threshold

    def options(self) -> ExecutorOptions:
        return ExecutorOptions(**msgspec.structs.asdict(self))


class TritonSettings(msgspec.Struct, kw_only=True):
    url: str = "127.0.0.1:8001"  # gRPC
    concurrency: int = 4
    timeout_s: float = 120.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 4.0
    document_attempts: int = 3  # tries of one document the healthy server keeps refusing before it is dead-lettered


class Settings(msgspec.Struct, kw_only=True):
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: Topics = msgspec.field(default_factory=Topics)
    triton: TritonSettings = msgspec.field(default_factory=TritonSettings)
    executor: ExecutorSettings = msgspec.field(default_factory=ExecutorSettings)
    group_id: Optional[str] = None  # default: prox-<service>
    http_port: int = 9400  # /healthz, /readyz, /metrics
    batch_size: int = 256  # records per fetch (I/O batch)
    model_batch_size: int = 32  # documents per Triton request; capped at the model's max_batch_size (32 by default)
    max_in_flight: int = 1024  # fetched but unacknowledged messages before fetching pauses
    max_message_bytes: int = 4_000_000  # larger raw messages go to the dead-letter topic
    dlq_payload_bytes: int = 65_536  # dead-letter payloads are cut to this size
    commit_interval_s: float = 1.0
    log_level: str = "INFO"


HELP = {
    "kafka.bootstrap_servers": "Kafka bootstrap servers, host:port[,host:port]",
    "kafka.security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "kafka.sasl_mechanism": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    "kafka.idempotent": "idempotent producer (Apache Kafka: true; embedded Tansu: false)",
    "triton.url": "Triton gRPC endpoint host:port",
    "group_id": "consumer group (default prox-SERVICE)",
    "http_port": "port of /healthz, /readyz and /metrics",
    "batch_size": "records per Kafka fetch",
    "model_batch_size": "documents per Triton request",
    "max_in_flight": "unacknowledged messages before fetching pauses",
    "max_message_bytes": "raw messages above this size are dead-lettered",
    "executor.keep_threshold": "re-threshold the doc decision on keep_prob",
}


def _leaves(struct_type: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, default) of every leaf setting, depth first."""
    instance = struct_type()
    for name in struct_type.__struct_fields__:
        value = getattr(instance, name)
        if isinstance(value, msgspec.Struct):
            yield from _leaves(type(value), prefix + (name,))
        else:
            yield prefix + (name,), value


def env_name(path: tuple[str, ...]) -> str:
    return "PROX_" + "_".join(path).upper()


def flag_name(path: tuple[str, ...]) -> str:
    return "--" + "-".join(path).replace("_", "-")


def _dest(path: tuple[str, ...]) -> str:
    return "setting__" + "__".join(path)


def add_settings_arguments(parser: argparse.ArgumentParser, struct_type: type = None) -> None:
    """One flag per setting of `struct_type` (default `Settings`); `--help` shows its environment variable and default."""
    parser.add_argument("--config", default=os.environ.get("PROX_CONFIG"), help="YAML settings file [PROX_CONFIG]")
    group = parser.add_argument_group("settings (flag, environment variable, YAML key)")
    for path, default in _leaves(struct_type or Settings):
        key = ".".join(path)
        text = HELP.get(key, key.replace("_", " "))
        group.add_argument(
            flag_name(path), dest=_dest(path), default=None, metavar="V",
            help=f"{text} [{env_name(path)}; yaml {key}; default {default!r}]",
        )


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
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
    struct_type: type = None,
) -> Settings:
    """Resolve the settings of `struct_type` (default `Settings`; any msgspec struct of leaves and structs)."""
    struct_type = struct_type or Settings
    environ = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    config_path = getattr(args, "config", None) or environ.get("PROX_CONFIG")
    if config_path:
        tree = yaml.safe_load(Path(config_path).read_text()) or {}
    for path, _ in _leaves(struct_type):
        if env_name(path) in environ:
            _set(tree, path, _parse_scalar(environ[env_name(path)]))
        flag_value = getattr(args, _dest(path), None) if args is not None else None
        if flag_value is not None:
            _set(tree, path, _parse_scalar(flag_value))
    for key, value in (overrides or {}).items():
        _set(tree, tuple(key.split(".")), value)
    return _convert(tree, struct_type)


def _convert(tree: dict[str, Any], struct_type: type = None) -> Settings:
    try:
        return msgspec.convert(tree, struct_type or Settings, strict=False)
    except msgspec.ValidationError as exc:
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
