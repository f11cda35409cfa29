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
