"""TritonRefinerClient against the real heuristic model server: batching, metrics, retries, budget."""
import asyncio

import pytest

from prox.common.metrics import TRITON_BATCH_SIZE, TRITON_RETRIES
from prox.models.backends import ChunkDecision, DocDecision
from prox.refiners.triton_client import RetryBudgetExceeded, TritonRefinerClient
from tests.fixtures.triton import free_ports, start_model_server, urls_for

pytestmark = pytest.mark.integration

TEXTS = [f"Document {i}.\nA line of ordinary prose about topic {i}.\nAnother sentence here." for i in range(7)]


def sample_count(histogram, model: str) -> float:
    return histogram.labels(model=model)._sum.get(), sum(b.get() for b in histogram.labels(model=model)._buckets)


async def test_doc_and_chunk_programs_keep_order_and_length(triton_server):
    async with TritonRefinerClient(url=triton_server.grpc, budget_s=30.0) as client:
        await client.wait_ready(timeout_s=30.0)
        docs = await client.doc_programs(TEXTS)
        chunks = await client.chunk_programs(TEXTS)
        one_by_one = [(await client.doc_programs([text]))[0] for text in TEXTS]
    assert len(docs) == len(chunks) == len(TEXTS)
    assert all(isinstance(d, DocDecision) and 0.0 <= d.keep_prob <= 1.0 for d in docs)
    assert all(isinstance(c, ChunkDecision) for c in chunks)
    assert docs == one_by_one  # batching does not mix documents up


async def test_requests_hold_at_most_the_max_batch_size(triton_server):
    before_sum, before_count = sample_count(TRITON_BATCH_SIZE, "prox_doc")
    async with TritonRefinerClient(url=triton_server.grpc, max_batch_size=3, budget_s=30.0) as client:
        await client.doc_programs(TEXTS)
    after_sum, after_count = sample_count(TRITON_BATCH_SIZE, "prox_doc")
    assert (after_sum - before_sum, after_count - before_count) == (7, 3)  # 3 + 3 + 1


async def test_model_info_reports_the_heuristic_backend(triton_server):
    async with TritonRefinerClient(url=triton_server.grpc, budget_s=30.0) as client:
        info = await client.model_info("prox_doc")
    assert (info.name, info.backend) == ("prox_doc", "heuristic")
    assert info.version


async def test_with_a_budget_a_dead_server_fails_clearly():
    url = urls_for(free_ports()).grpc
    retries_before = TRITON_RETRIES.labels(model="prox_doc")._value.get()
    client = TritonRefinerClient(url=url, budget_s=0.5, max_batch_size=4, backoff_initial_s=0.05)
    with pytest.raises(RetryBudgetExceeded, match=url) as error:
        await client.doc_programs(["text"])
    await client.close()
    assert "unavailable" in str(error.value)
    assert TRITON_RETRIES.labels(model="prox_doc")._value.get() > retries_before


async def test_server_down_then_up_the_client_retries_and_succeeds():
    ports = free_ports()
    client = TritonRefinerClient(url=urls_for(ports).grpc, backoff_initial_s=0.1, backoff_max_s=1.0)
    pending = asyncio.ensure_future(client.doc_programs(TEXTS[:2]))  # no budget: retries until the server is up
    await asyncio.sleep(1.0)
    assert not pending.done()
    with start_model_server(ports=ports) as urls:
        decisions = await asyncio.wait_for(pending, timeout=120)
        await client.close()
    assert [type(d) for d in decisions] == [DocDecision, DocDecision]
    assert urls.process.returncode == 0  # SIGTERM shuts the server down cleanly
