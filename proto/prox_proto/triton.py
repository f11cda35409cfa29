"""The Triton wire contract between the services' client and the model server (as Morpheus' TritonInOut).

Both models take one input and answer per document (batch dimension first, one element per row):

| model        | input           | outputs                                                           |
|--------------|-----------------|-------------------------------------------------------------------|
| `prox_doc`   | `text` BYTES    | `program` BYTES (UTF-8), `keep_prob` FP32                         |
| `prox_chunk` | `text` BYTES    | `program` BYTES (UTF-8), `chunk_ranges` BYTES (`encode_chunk_ranges`) |

`text` is the document's UTF-8 text. A request the server refuses for one document fails with
INVALID_ARGUMENT. The model config's parameters `prox_model_name`, `prox_model_version` and `prox_backend`
say which writer answers (`ModelInfo`).
"""
from __future__ import annotations

import json
from typing import NamedTuple, Sequence

DOC_MODEL = "prox_doc"
CHUNK_MODEL = "prox_chunk"
MODELS = (DOC_MODEL, CHUNK_MODEL)

TEXT = "text"
PROGRAM = "program"
KEEP_PROB = "keep_prob"
CHUNK_RANGES = "chunk_ranges"

INFO_PARAMETERS = ("prox_model_name", "prox_model_version", "prox_backend")


class DocDecision(NamedTuple):
    program: str  # "keep_doc()" or "drop_doc()" (or whatever the model wrote)
    keep_prob: float  # in [0, 1]


class ChunkDecision(NamedTuple):
    program: str  # the whole document's chunk program, global line numbers, chunk programs joined by "\n"
    chunk_ranges: list[tuple[int, int]]  # [first_line, last_line] (inclusive) of each chunk


def encode_chunk_ranges(ranges: Sequence[Sequence[int]]) -> bytes:
    """`[[first, last], ...]` as JSON: one BYTES element per document (chunk counts vary)."""
    return json.dumps([[int(first), int(last)] for first, last in ranges]).encode()


def decode_chunk_ranges(value: bytes) -> list[tuple[int, int]]:
    return [(int(first), int(last)) for first, last in json.loads(value)]
