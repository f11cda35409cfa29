"""The `hf` backend through the real Triton: a tiny LLaMA trained here must come back with its exact programs."""
import subprocess
import sys

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from prox.models.backends import ChunkDecision, DocDecision
from prox.models.client import DocumentError, TritonRefinerClient
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
        "--chunk-tokens", str(CHUNK_TOKENS), "--max-batch-size", "4", "--max-text-bytes", str(MAX_TEXT_BYTES),
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
