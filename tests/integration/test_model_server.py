"""`prox model-server` with the heuristic backends on the real tritonserver."""
import concurrent.futures
import os
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.integration


def infer(url: str, model: str, texts: list[bytes]):
    client = grpcclient.InferenceServerClient(url)
    text = grpcclient.InferInput("text", [len(texts), 1], "BYTES")
    text.set_data_from_numpy(np.array(texts, dtype=np.object_).reshape(-1, 1))
    try:
        return client.infer(model, [text])
    except InferenceServerException as exc:
        return exc


def test_ready_as_triton_defines_it_with_both_models(triton_server):
    for path in ("/v2/health/ready", "/v2/models/prox_doc/ready", "/v2/models/prox_chunk/ready"):
        with urllib.request.urlopen(triton_server.http + path, timeout=5) as response:
            assert response.status == 200


def test_models_use_dynamic_batching_and_publish_their_backend(triton_server):
    config = grpcclient.InferenceServerClient(triton_server.grpc).get_model_config("prox_chunk", as_json=True)["config"]
    assert int(config["max_batch_size"]) == 32 and "dynamic_batching" in config
    assert config["parameters"]["prox_backend"]["string_value"] == "heuristic"


def test_the_heuristic_writers_run_on_every_core_with_the_same_programs(triton_server):
    from prox.models.backends import load_chunk_writer, load_doc_writer

    config = grpcclient.InferenceServerClient(triton_server.grpc).get_model_config("prox_doc", as_json=True)["config"]
    assert sum(int(group["count"]) for group in config["instance_group"]) == os.cpu_count()
    texts = [f"Page {i}.\nMenu | Home | About\nA paragraph of ordinary prose, number {i}, long enough to keep."
             for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:  # concurrent batches land on different workers
        docs = list(pool.map(lambda text: infer(triton_server.grpc, "prox_doc", [text.encode()]), texts))
        chunks = list(pool.map(lambda text: infer(triton_server.grpc, "prox_chunk", [text.encode()]), texts))
    in_process_doc, in_process_chunk = load_doc_writer("heuristic").write(texts), load_chunk_writer("heuristic").write(texts)
    assert [d.as_numpy("program")[0, 0].decode() for d in docs] == [d.program for d in in_process_doc]
    assert [float(d.as_numpy("keep_prob")[0, 0]) for d in docs] == pytest.approx([d.keep_prob for d in in_process_doc])
    assert [c.as_numpy("program")[0, 0].decode() for c in chunks] == [c.program for c in in_process_chunk]


def test_outputs_have_the_contract_shapes_and_types(triton_server):
    doc = infer(triton_server.grpc, "prox_doc", [b"A page.\nWith two lines.", b"Another page."])
    chunk = infer(triton_server.grpc, "prox_chunk", [b"A page.\nWith two lines."])
    assert doc.as_numpy("program").shape == (2, 1) and doc.as_numpy("keep_prob").dtype == np.float32
    assert doc.as_numpy("program")[0, 0] in (b"keep_doc()", b"drop_doc()")
    assert chunk.as_numpy("chunk_ranges")[0, 0] == b"[[0, 1]]"


def test_an_undecodable_request_fails_alone_while_concurrent_requests_succeed(triton_server):
    texts = [b"A fine page.", b"\xff\xfe not utf-8", b"Another fine page."] * 4
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        results = list(pool.map(lambda text: infer(triton_server.grpc, "prox_doc", [text]), texts))
    for text, result in zip(texts, results):
        if text.startswith(b"\xff"):
            assert isinstance(result, InferenceServerException) and result.status() == "StatusCode.INVALID_ARGUMENT"
        else:
            assert not isinstance(result, Exception), result


def test_triton_metrics_port_serves_inference_counters(triton_server):
    infer(triton_server.grpc, "prox_doc", [b"count me"])
    with urllib.request.urlopen(triton_server.metrics, timeout=5) as response:
        body = response.read().decode()
    assert 'nv_inference_request_success{model="prox_doc"' in body
