"""TritonRefinerClient without a server: every gRPC status is classified on purpose, infrastructure failures
are retried and never become document errors, a document is blamed only while the server is healthy, and
requests are split to the model's max_batch_size."""
from __future__ import annotations

import logging

import grpc
import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from prox.refiners.triton_client import (INFRASTRUCTURE, STATUS_MEANING, SUSPECT, DocumentError, RetryBudgetExceeded,
                                TritonRefinerClient, classify)
from prox.models.backends import DocDecision


def status_error(name: str, message: str = "") -> InferenceServerException:
    return InferenceServerException(msg=message or name, status=f"StatusCode.{name}")


class FakeResult:
    def __init__(self, texts: list[bytes]):
        self.texts = texts

    def as_numpy(self, name: str):
        if name == "program":
            return np.array([b"keep_doc()"] * len(self.texts), dtype=np.object_).reshape(-1, 1)
        return np.array([[float(len(text))] for text in self.texts], dtype=np.float32)


class FakeTriton:
    """A gRPC client double: `failures` is a list of (status, healthy) consumed one per infer call; after an
    unhealthy one the next readiness check fails (a restart under way) and the one after passes; `poison`
    texts always fail with INVALID_ARGUMENT."""

    def __init__(self, failures=(), poison=(), max_batch_size: int = 4):
        self.failures = list(failures)
        self.poison = set(poison)
        self.unready_checks = 0
        self.max_batch_size = max_batch_size
        self.requests: list[list[bytes]] = []

    async def infer(self, model, inputs, client_timeout=None):
        texts = inputs[0].texts
        self.requests.append(texts)
        if self.failures:
            status, healthy = self.failures.pop(0)
            self.unready_checks = 0 if healthy else 1
            raise status_error(status)
        if self.poison & set(texts):
            raise status_error("INVALID_ARGUMENT", "text refused")
        return FakeResult(texts)

    async def is_server_ready(self):
        if self.unready_checks:
            self.unready_checks -= 1
            return False
        return True

    async def is_model_ready(self, model):
        return True

    async def get_model_config(self, model, as_json=True):
        return {"config": {"max_batch_size": self.max_batch_size}}

    async def close(self):
        pass


class Input:
    """Stands in for grpcclient.InferInput: keeps the texts it was given."""

    def __init__(self, name, shape, dtype):
        self.texts: list[bytes] = []

    def set_data_from_numpy(self, array):
        self.texts = [bytes(value) for value in array.reshape(-1)]


@pytest.fixture
def fake(monkeypatch):
    import prox.refiners.triton_client as client_module

    monkeypatch.setattr(client_module.grpcclient, "InferInput", Input)

    def make(**options) -> tuple[TritonRefinerClient, FakeTriton]:
        triton = FakeTriton(**{k: options.pop(k) for k in ("failures", "poison", "max_batch_size") if k in options})
        client = TritonRefinerClient(url="fake:1", backoff_initial_s=0.001, backoff_max_s=0.002, **options)
        client._client = triton
        return client, triton

    return make


@pytest.mark.parametrize("code", [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK])
def test_every_grpc_status_has_a_deliberate_meaning(code):
    assert code.name in STATUS_MEANING
    kind, meaning = classify(status_error(code.name))
    assert meaning in (INFRASTRUCTURE, SUSPECT) and kind != "other"


def test_a_model_that_is_loading_or_a_server_going_away_is_infrastructure():
    for name in ("UNAVAILABLE", "NOT_FOUND", "CANCELLED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
        assert classify(status_error(name))[1] == INFRASTRUCTURE, name
    assert classify(ConnectionResetError())[1] == INFRASTRUCTURE
    assert classify(TimeoutError())[1] == INFRASTRUCTURE
    assert classify(status_error("INVALID_ARGUMENT"))[1] == SUSPECT


async def test_model_reloading_after_a_restart_is_retried_not_blamed_on_documents(fake):
    # What a model-server restart looks like: NOT_FOUND "has no available versions" while Triton loads,
    # then INTERNAL from the stub that died, with the server unhealthy each time.
    client, triton = fake(failures=[("UNAVAILABLE", False), ("NOT_FOUND", False), ("INTERNAL", False),
                                    ("NOT_FOUND", True), ("CANCELLED", True)])
    decisions = await client.doc_programs(["a", "bb", "ccc"])
    assert decisions == [DocDecision("keep_doc()", 1.0), DocDecision("keep_doc()", 2.0), DocDecision("keep_doc()", 3.0)]
    assert not triton.failures


async def test_a_document_is_blamed_only_after_failing_alone_while_the_server_is_healthy(fake):
    client, triton = fake(poison={b"bad"}, document_attempts=3)
    decisions = await client.doc_programs(["good", "bad", "fine"])
    assert isinstance(decisions[1], DocumentError) and decisions[1].reason == "invalid_argument"
    assert [d.program for i, d in enumerate(decisions) if i != 1] == ["keep_doc()", "keep_doc()"]
    assert sum(request == [b"bad"] for request in triton.requests) == 3  # three tries alone


async def test_internal_errors_while_healthy_isolate_the_document_at_fault(fake):
    client, triton = fake(failures=[("INTERNAL", True)] * 10, max_batch_size=8)
    decisions = await client.doc_programs(["a", "b"])
    # 10 INTERNAL answers with the server healthy: split, then each document tried alone 3 times.
    assert all(isinstance(d, DocumentError) and d.reason == "internal" for d in decisions)


async def test_infrastructure_failures_are_never_document_errors_even_for_a_single_document(fake):
    client, triton = fake(failures=[("UNAVAILABLE", True)] * 20, document_attempts=1)
    assert await client.doc_programs(["alone"]) == [DocDecision("keep_doc()", 5.0)]


async def test_with_a_budget_infrastructure_failure_raises_an_infrastructure_error(fake):
    client, triton = fake(failures=[("UNAVAILABLE", True)] * 10_000, budget_s=0.05)
    with pytest.raises(RetryBudgetExceeded, match="fake:1"):
        await client.doc_programs(["x"])


async def test_requests_are_split_to_the_model_max_batch_size_with_a_warning(fake, caplog):
    client, triton = fake(max_batch_size=4)
    client.max_batch_size = 32  # configured larger than the server accepts
    with caplog.at_level(logging.WARNING, logger="prox.triton"):
        decisions = await client.doc_programs([f"doc {i}" for i in range(10)])
    assert len(decisions) == 10 and [len(request) for request in triton.requests] == [4, 4, 2]
    assert "larger than prox_doc's max_batch_size 4" in caplog.text


async def test_a_smaller_configured_batch_is_kept(fake):
    client, triton = fake(max_batch_size=16)
    client.max_batch_size = 3
    await client.doc_programs([f"doc {i}" for i in range(7)])
    assert [len(request) for request in triton.requests] == [3, 3, 1]


async def test_unencodable_text_fails_alone_without_a_request(fake):
    client, triton = fake()
    decisions = await client.doc_programs(["ok", "bad \udc00"])
    assert isinstance(decisions[1], DocumentError) and "not encodable" in decisions[1].message
    assert triton.requests == [[b"ok"]]


def test_the_grpc_channel_reconnects_no_slower_than_the_client_backs_off():
    """gRPC's own reconnect backoff grows to 120 s: after a one-minute outage the channel stayed down ~20 s
    after the server was back (measured); capped, the first retry after the server is ready gets through."""
    args = dict(TritonRefinerClient(url="fake:1", backoff_max_s=4.0)._channel_args())
    assert args["grpc.max_reconnect_backoff_ms"] == 4000
    assert args["grpc.initial_reconnect_backoff_ms"] <= 100
    assert "grpc.min_reconnect_backoff_ms" not in args  # gRPC's connect timeout: keep its 20 s default
    assert args["grpc.max_receive_message_length"] == args["grpc.max_send_message_length"] > 2**30
