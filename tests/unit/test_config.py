"""Settings: defaults < YAML < PROX_* environment < flags, validated."""
from __future__ import annotations

import argparse

import pytest

from prox.common.config import add_settings_arguments, load_settings


def test_settings_precedence_flags_over_env_over_yaml(tmp_path):
    config = tmp_path / "prox.yaml"
    config.write_text("kafka:\n  bootstrap_servers: yaml:9092\n  security_protocol: SASL_SSL\nbatch_size: 7\n"
                      "topics:\n  raw: crawl.raw\n")
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    args = parser.parse_args(["--config", str(config), "--batch-size", "9"])
    env = {"PROX_KAFKA_BOOTSTRAP_SERVERS": "env:9092", "PROX_BATCH_SIZE": "8", "PROX_KAFKA_IDEMPOTENT": "false"}
    settings = load_settings(args, environ=env)
    assert settings.kafka.bootstrap_servers == "env:9092"
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.batch_size == 9
    assert settings.kafka.idempotent is False
    assert settings.topics.raw == "crawl.raw" and settings.topics.refined == "prox.refined"


def test_invalid_settings_fail_clearly():
    with pytest.raises(SystemExit, match="invalid settings"):
        load_settings(None, environ={"PROX_BATCH_SIZE": "many"})


def command_settings() -> dict[str, tuple[type, tuple]]:
    from prox.cli.service import SERVICES, settings_type
    from prox.common.config import ToolSettings
    from prox.executor.settings import ExecutorOptions
    from prox.models.settings import ModelServerSettings

    found = {f"service {name}": (settings_type(name), ()) for name in SERVICES}
    found.update({"model-server": (ModelServerSettings, ()), "execute": (ExecutorOptions, ("executor",)),
                  "produce/consume/topics/dlq": (ToolSettings, ())})
    return found


@pytest.mark.parametrize("command", list(command_settings()))
def test_every_setting_of_every_command_is_documented(command):
    from prox.common.config import leaves

    struct_type, root = command_settings()[command]
    undocumented = [".".join(path) for path, _, text in leaves(struct_type, root) if text == path[-1].replace("_", " ")]
    assert undocumented == []


def parse(command: list[str]):
    from prox.cli.main import build_parser

    return build_parser().parse_args(command)


def test_each_service_accepts_only_its_own_settings():
    assert parse(["service", "doc-refiner", "--triton-url", "gpu:8001"]).setting__triton__url == "gpu:8001"
    with pytest.raises(SystemExit):
        parse(["service", "doc-refiner", "--executor-max-errors", "3"])
    with pytest.raises(SystemExit):
        parse(["service", "executor", "--triton-url", "gpu:8001"])
    assert parse(["service", "executor", "--executor-max-errors", "3"]).setting__executor__max_errors == "3"


def test_prox_execute_and_the_executor_service_read_the_same_settings():
    from prox.executor.settings import ExecutorOptions, ExecutorServiceSettings

    env = {"PROX_EXECUTOR_KEEP_THRESHOLD": "0.7", "PROX_EXECUTOR_MIN_WORDS": "5"}
    service = load_settings(None, environ=env, struct_type=ExecutorServiceSettings)
    offline = load_settings(parse(["execute", "--input", "-", "--output", "-"]), environ=env,
                            struct_type=ExecutorOptions, root=("executor",))
    assert service.executor == offline == ExecutorOptions(keep_threshold=0.7, min_words=5)
    flag = parse(["execute", "--input", "-", "--output", "-", "--keep-threshold", "0.2"])
    assert load_settings(flag, environ=env, struct_type=ExecutorOptions, root=("executor",)).keep_threshold == 0.2


@pytest.mark.parametrize("env", [{"PROX_BATCH_SIZE": "0"}, {"PROX_KAFKA_SECURITY_PROTOCOL": "TLS"},
                                 {"PROX_BATCH_SIZE": "4096", "PROX_MAX_IN_FLIGHT": "16"},
                                 {"PROX_HTTP_PORT": "70000"}])
def test_out_of_range_values_are_refused_with_the_setting_named(env):
    with pytest.raises(SystemExit, match="invalid settings"):
        load_settings(None, environ=env)


def test_the_model_server_keeps_its_flags_and_names_its_thresholds_apart():
    from prox.models.settings import ModelServerSettings

    args = parse(["model-server", "--doc-backend", "hf", "--doc-model", "/m/doc", "--doc-keep-threshold", "0.6",
                  "--triton-max-batch-size", "64", "--workers", "2"])
    settings = load_settings(args, environ={}, struct_type=ModelServerSettings)
    assert (settings.doc.backend, settings.doc.model, settings.doc.keep_threshold) == ("hf", "/m/doc", 0.6)
    assert (settings.triton.max_batch_size, settings.worker_count(cpus=8)) == (64, 2)
    assert ModelServerSettings().worker_count(cpus=8) == 8  # heuristic: one writer process per core
    with pytest.raises(SystemExit, match="invalid settings"):
        load_settings(None, environ={"PROX_DOC_BACKEND": "vllm"}, struct_type=ModelServerSettings)


@pytest.mark.parametrize("struct", ["prox.common.config:ServiceSettings", "prox.common.config:ToolSettings",
                                    "prox.models.settings:ModelServerSettings", "prox.sink.settings:SinkSettings"])
def test_every_command_refuses_an_unknown_log_level(struct):
    import importlib

    module, name = struct.split(":")
    with pytest.raises(SystemExit, match="invalid settings"):
        load_settings(None, environ={"PROX_LOG_LEVEL": "LOUD"}, struct_type=getattr(importlib.import_module(module), name))
