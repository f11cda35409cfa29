"""The `hf` backend through the real Triton: a tiny LLaMA trained here must come back with its exact programs."""
import subprocess
import sys

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from prox.models.backends import ChunkDecision, DocDecision
from prox.refiners.triton_client import DocumentError, TritonRefinerClient
from tests.fixtures.triton import server_environment, start_model_server
from tests.helpers.tiny_llama import build_tiny_llama

pytestmark = pytest.mark.integration

DOC_PROGRAMS = {
    "Buy cheap pills now!!! Best prices online\nclick here": "drop_doc()",
    "The river flows through the old town.\nIts bridges date from the 1600s.": "keep_doc()",
    "Login | Register | Cart (0)\nCookies help us deliver our services": "drop_doc()",
    "Photosynthesis turns light into chemical energy.\nPlants store it as sugar.": "keep_doc()",
}
CHUNK_TOKENS = 60  # small, so the first chunk document splits into two chunks
CHUNK_PROGRAMS = {
    "Home | About | Contact\nSkip to content\nThe moon orbits the earth.\nIt takes about 27 days.\n"
    "Share on Facebook\nCopyright 2024": ["remove_lines(line_start=0, line_end=1)", "remove_lines(line_start=4, line_end=5)"],
    "Water boils at 100 degrees.\nAt altitude it boils lower.": ["keep_chunk()"],
}
MAX_TEXT_BYTES = 2000


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), DOC_PROGRAMS, CHUNK_PROGRAMS, CHUNK_TOKENS)


@pytest.fixture(scope="module")
def hf_server(tiny_llama_dir):
    model = str(tiny_llama_dir)
    with start_model_server(
        "--doc-backend", "hf", "--doc-model", model, "--chunk-backend", "hf", "--chunk-model", model,
        "--chunk-tokens", str(CHUNK_TOKENS), "--triton-max-batch-size", "4", "--triton-max-text-bytes", str(MAX_TEXT_BYTES),
    ) as urls:
        yield urls


@pytest.fixture
async def client(hf_server):
    client = TritonRefinerClient(url=hf_server.grpc, budget_s=30.0)
    yield client
    await client.close()


async def test_doc_programs_are_the_trained_ones(client):
    decisions = await client.doc_programs(list(DOC_PROGRAMS))
    assert [d.program for d in decisions] == list(DOC_PROGRAMS.values())
    for decision in decisions:
        assert isinstance(decision, DocDecision)
        assert (decision.keep_prob >= 0.5) == (decision.program == "keep_doc()")


async def test_chunk_programs_are_joined_in_line_order_with_their_ranges(client):
    decisions = await client.chunk_programs(list(CHUNK_PROGRAMS))
    assert decisions == [
        ChunkDecision("remove_lines(line_start=0, line_end=1)\nremove_lines(line_start=4, line_end=5)", [(0, 3), (4, 5)]),
        ChunkDecision("keep_chunk()", [(0, 1)]),
    ]


async def test_model_info_names_the_hf_backend(client):
    info = await client.model_info("prox_chunk")
    assert (info.name, info.backend) == ("prox_chunk", "hf")
    assert len(info.version) == 12  # digest of the model's config.json


async def test_an_oversized_document_fails_alone_and_its_batch_mates_succeed(client):
    texts = list(DOC_PROGRAMS)[:2] + ["x" * (MAX_TEXT_BYTES + 1)] + list(DOC_PROGRAMS)[2:]
    results = await client.doc_programs(texts)
    assert isinstance(results[2], DocumentError) and results[2].reason == "invalid_argument"
    assert "exceeds the limit" in results[2].message
    assert [r.program for i, r in enumerate(results) if i != 2] == list(DOC_PROGRAMS.values())


def test_undecodable_text_is_invalid_argument_for_that_request_only(hf_server):
    client = grpcclient.InferenceServerClient(hf_server.grpc)
    text = grpcclient.InferInput("text", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"caf\xe9 au lait"]], dtype=np.object_))
    with pytest.raises(InferenceServerException) as error:
        client.infer("prox_doc", [text])
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "UTF-8" in error.value.message()


def test_generate_decoding_writes_the_same_programs_in_process(tiny_llama_dir):
    from prox.models.hf import HFDocWriter

    writer = HFDocWriter(str(tiny_llama_dir), doc_decode="generate")
    decisions = writer.write(list(DOC_PROGRAMS))
    assert [d.program for d in decisions] == list(DOC_PROGRAMS.values())
    assert [d.keep_prob for d in decisions] == [0.0 if p == "drop_doc()" else 1.0 for p in DOC_PROGRAMS.values()]


@pytest.fixture(scope="module")
def chunk_writer(tiny_llama_dir):
    from prox.models.hf import HFChunkWriter

    return HFChunkWriter(str(tiny_llama_dir), chunk_tokens=CHUNK_TOKENS)


def test_the_model_sees_exactly_the_prompts_prox_prompts_reports(chunk_writer, tiny_llama_dir):
    from prox.models.prompts import load_prompt_builder

    text = next(iter(CHUNK_PROGRAMS))
    assert chunk_writer.prompts.chunk_prompts(text) == load_prompt_builder(tiny_llama_dir, chunk_tokens=CHUNK_TOKENS)\
        .chunk_prompts(text)


def test_an_empty_document_sends_no_chunk(chunk_writer):
    assert chunk_writer.write([""]) == [ChunkDecision("", [])]


def test_a_chunk_longer_than_the_context_is_not_run_and_is_counted(chunk_writer):
    text, programs = next(iter(CHUNK_PROGRAMS.items()))
    too_long = " ".join(["river"] * chunk_writer.prompts.context_tokens)  # one line: its own chunk, over the context
    before = chunk_writer.chunks_not_sent
    (decision,) = chunk_writer.write([text + "\n" + too_long])
    assert decision.program == "\n".join(programs + [""])  # the unsent chunk's program is empty, as vLLM's was
    assert decision.chunk_ranges == [(0, 3), (4, 5), (6, 6)]
    assert chunk_writer.chunks_not_sent == before + 1


def test_continuous_batching_writes_the_same_programs_as_padded_generate(tiny_llama_dir, chunk_writer):
    from prox.models.hf import HFChunkWriter

    continuous = HFChunkWriter(str(tiny_llama_dir), chunk_tokens=CHUNK_TOKENS, chunk_engine="continuous")
    texts = list(CHUNK_PROGRAMS) + list(DOC_PROGRAMS)
    assert continuous.write(texts) == chunk_writer.write(texts)


def test_a_generation_failure_fails_the_batch_and_the_next_one_is_written(tiny_llama_dir):
    """An out-of-memory inside continuous batching raises out of write (Triton fails the batch, the client
    retries it), never a document with a cut program; the stream is rebuilt for the next batch."""
    from prox.models.engine import GenerationFailed
    from prox.models.hf import HFChunkWriter

    writer = HFChunkWriter(str(tiny_llama_dir), chunk_tokens=CHUNK_TOKENS, chunk_engine="continuous")
    texts = list(CHUNK_PROGRAMS)
    expected = writer.write(texts)

    def out_of_memory(*_):
        raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB (simulated)")

    hook = writer.runner.model.register_forward_pre_hook(out_of_memory)
    with pytest.raises(GenerationFailed, match="out of memory"):
        writer.write(texts)
    hook.remove()
    assert writer.write(texts) == expected


@pytest.mark.parametrize("missing", ["model", "tokenizer"])
def test_missing_model_or_tokenizer_is_a_one_line_startup_error(tmp_path, tiny_llama_dir, missing):
    model_dir = tmp_path / "model"
    if missing == "tokenizer":  # a model directory without its tokenizer files
        model_dir.mkdir()
        (model_dir / "config.json").write_bytes((tiny_llama_dir / "config.json").read_bytes())
    command = [sys.executable, "-m", "prox.cli.main", "model-server", "--doc-backend", "hf", "--doc-model", str(model_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=server_environment(), timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("prox model-server: error:")
    assert str(model_dir) in done.stderr


def test_the_gpu_benchmark_runs_engines_and_baselines_on_prox_prompts_output(tiny_llama_dir, tmp_path):
    """benchmarks/bench_model.py as documented in results/model_gpu.md, on CPU with a tiny model: every case
    within its budget, each appended as a JSON line as it ends, an out-of-memory recorded and the run going on."""
    import argparse
    import importlib.util
    import json
    import time

    from prox.cli.main import main
    from tests.fixtures.paths import REPO

    documents = tmp_path / "docs.jsonl"
    documents.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(CHUNK_PROGRAMS)))
    prompts = tmp_path / "prompts.jsonl.gz"
    assert main(["prompts", "--model", str(tiny_llama_dir), "--input", str(documents), "--output", str(prompts)]) == 0
    spec = importlib.util.spec_from_file_location("bench_model", REPO / "benchmarks" / "bench_model.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(device="cpu", dtype="float32", docs=2, batch_size=2, token_budget=4096, doc_tokens=0,
                              chunk_tokens=0, new_tokens=2, prompts=str(prompts), crop=0, max_chunks=0,
                              chunk_engine="continuous", shape="tiny", budget_s=60.0, round_docs=1,
                              requests_per_batch=[1, 4], vllm_memory=0.4)
    lines = tmp_path / "model.jsonl"
    sink = bench.ResultSink(lines, "test-run")
    started = time.monotonic()
    original = bench.padded_forward
    bench.padded_forward = lambda *_: (_ for _ in ()).throw(MemoryError("CUDA out of memory (simulated)"))
    try:
        results = bench.run(args, sink)
    finally:
        bench.padded_forward = original
    assert time.monotonic() - started < 120
    assert results["doc_engine"]["docs"] == results["doc_engine"]["of_docs"] == 2
    assert results["doc_padded_forward"]["error"] == "MemoryError"  # recorded, and the chunk cases still ran
    engines = [results["chunk_engine_r1"], results["chunk_engine_r4"]]
    assert all(r["input_tokens"] == results["chunk_padded_generate"]["input_tokens"] > 0 for r in engines)
    assert "1 requests" in engines[0]["sizing"] and "4 requests" in engines[1]["sizing"]
    assert results["vllm_chunk"].get("skipped") or results["vllm_chunk"].get("docs")
    recorded = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["case"] for r in recorded][-1] == "summary" and all(r["run"] == "test-run" for r in recorded)
    text = bench.markdown(recorded)
    assert "| chunk | chunk_padded_generate |" in text and "MemoryError: CUDA out of memory" in text
