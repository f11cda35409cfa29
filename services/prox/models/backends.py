"""What a program writer is (heuristic or LM), and how the model server loads one by name.

The services never import this: they reach writers through Triton (see `client.py`).
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence

from prox_proto import ModelInfo
from prox_proto.triton import ChunkDecision, DocDecision  # noqa: F401  (what writers return)


class DocWriter(Protocol):
    info: ModelInfo

    def write(self, texts: Sequence[str]) -> list[DocDecision]: ...


class ChunkWriter(Protocol):
    info: ModelInfo

    def write(self, texts: Sequence[str]) -> list[ChunkDecision]: ...


BACKENDS = ("heuristic", "hf")


def load_doc_writer(backend: str, model_path: Optional[str] = None, **options) -> DocWriter:
    if backend == "heuristic":
        from .heuristic import HeuristicDocWriter

        return HeuristicDocWriter(model_path, **options)
    if backend == "hf":
        from .hf import HFDocWriter

        return HFDocWriter(model_path, **options)
    raise ValueError(f"unknown doc backend {backend!r}; choose one of {BACKENDS}")


def load_chunk_writer(backend: str, model_path: Optional[str] = None, **options) -> ChunkWriter:
    if backend == "heuristic":
        from .heuristic import HeuristicChunkWriter

        return HeuristicChunkWriter(model_path, **options)
    if backend == "hf":
        from .hf import HFChunkWriter

        return HFChunkWriter(model_path, **options)
    raise ValueError(f"unknown chunk backend {backend!r}; choose one of {BACKENDS}")
