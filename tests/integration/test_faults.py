"""Fault tolerance on the real embedded broker and real Triton: kills, an outage, a failover.

Each scenario (tests/fixtures/scenarios.py, shared with the real-Kafka tier) streams real pages while
something fails, then checks that every input id ends in exactly one of refined / dropped / dead-letter
after de-duplication by id, with the right content.
"""
from __future__ import annotations

import pytest

from tests.fixtures.scenarios import (model_server_outage_scenario, model_server_restarts_scenario,
                                      replica_failover_scenario, sigkill_scenario)
from tests.fixtures.stack import start_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
async def fault_stack(tmp_path_factory):
    running = await start_stack(tmp_path_factory.mktemp("faults"), replicas={"executor": 2}, partitions=4,
                                service_env={"PROX_BATCH_SIZE": "16", "PROX_MODEL_BATCH_SIZE": "8"})
    try:
        yield running
    finally:
        running.stack.stop()


@pytest.mark.parametrize("service", ["doc-refiner", "chunk-refiner", "executor"])
async def test_sigkill_a_service_mid_stream_loses_nothing(fault_stack, service, record_property):
    duplicates = (await sigkill_scenario(fault_stack, service, tag=f"kill-{service}")).duplicates
    record_property("duplicates", duplicates)
    print(f"\nSIGKILL {service}: 240 documents, {duplicates} duplicates after restart")


async def test_model_server_outage_longer_than_backoff_ceiling(fault_stack):
    await model_server_outage_scenario(fault_stack, tag="outage")


async def test_model_server_restarted_five_times_in_a_row_dead_letters_nothing(fault_stack):
    duplicates = (await model_server_restarts_scenario(fault_stack, tag="restarts", restarts=5, count=160)).duplicates
    print(f"\nmodel server restarted 5 times: 160 documents, {duplicates} duplicates, 0 dead letters")


async def test_replica_stopped_mid_stream_its_partner_takes_over(fault_stack):
    await replica_failover_scenario(fault_stack, "executor-1", tag="failover")
