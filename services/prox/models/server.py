"""Serves a doc writer as `prox_doc` and a chunk writer as `prox_chunk` on Triton (PyTriton).

Triton's dynamic batcher merges client requests; each merged batch is written in one `writer.write` call.
A request whose text is not UTF-8 or is too large fails alone with INVALID_ARGUMENT (see `pytriton_patch`).
"""
from __future__ import annotations

import logging
import threading
from typing import Optional, Sequence

import numpy as np

from prox_proto.triton import (CHUNK_MODEL, CHUNK_RANGES, DOC_MODEL, INFO_PARAMETERS, KEEP_PROB, PROGRAM, TEXT,
                               encode_chunk_ranges)

from .backends import ChunkWriter, DocWriter
from .pytriton_patch import ERROR_OUTPUT, model_parameters, patch_pytriton
from .settings import TritonServerSettings

LOGGER = logging.getLogger("prox.models.server")


class InvalidText(ValueError):
    pass


def decode_texts(column: np.ndarray, max_text_bytes: int) -> list[str]:
    texts = []
    for raw in column.reshape(-1):
        raw = raw if isinstance(raw, bytes) else bytes(raw)
        if len(raw) > max_text_bytes:
            raise InvalidText(f"text of {len(raw)} bytes exceeds the limit of {max_text_bytes} bytes")
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidText(f"text is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return texts


def _bytes_column(values: Sequence[str]) -> np.ndarray:
    return np.array([[value.encode("utf-8")] for value in values], dtype=np.object_)


def _error_response(message: str) -> dict:
    return {ERROR_OUTPUT: np.array([[message.encode("utf-8")]], dtype=np.object_)}


def make_infer_function(write_outputs, max_text_bytes: int):
    """Infer function over Triton requests: valid ones are written together, invalid ones fail alone."""

    def infer(requests):
        texts_per_request: list[Optional[list[str]]] = []
        responses: list[Optional[dict]] = []
        for request in requests:
            try:
                texts_per_request.append(decode_texts(request[TEXT], max_text_bytes))
                responses.append(None)
            except InvalidText as exc:
                texts_per_request.append(None)
                responses.append(_error_response(str(exc)))
        valid = [texts for texts in texts_per_request if texts is not None]
        outputs = iter(_split_outputs(write_outputs([t for texts in valid for t in texts]), [len(t) for t in valid]))
        return [response if response is not None else next(outputs) for response in responses]

    return infer


def _split_outputs(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict]:
    parts, start = [], 0
    for size in sizes:
        parts.append({name: column[start:start + size] for name, column in outputs.items()})
        start += size
    return parts


def doc_outputs(writer: DocWriter):
    def write(texts: list[str]) -> dict[str, np.ndarray]:
        decisions = writer.write(texts) if texts else []
        return {
            PROGRAM: _bytes_column([d.program for d in decisions]),
            KEEP_PROB: np.array([[d.keep_prob] for d in decisions], dtype=np.float32).reshape(-1, 1),
        }

    return write


def chunk_outputs(writer: ChunkWriter):
    def write(texts: list[str]) -> dict[str, np.ndarray]:
        decisions = writer.write(texts) if texts else []
        return {
            PROGRAM: _bytes_column([d.program for d in decisions]),
            CHUNK_RANGES: np.array([[encode_chunk_ranges(d.chunk_ranges)] for d in decisions], dtype=np.object_),
        }

    return write


def _info_parameters(writer) -> dict[str, str]:
    return dict(zip(INFO_PARAMETERS, (writer.info.name, writer.info.version, writer.info.backend)))


def bind_models(triton, doc_writer: DocWriter, chunk_writer: ChunkWriter, settings: TritonServerSettings,
                instances: int = 1) -> None:
    """Both models, each with `instances` Triton model instances (batches written at once)."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    patch_pytriton()
    config = ModelConfig(
        max_batch_size=settings.max_batch_size,
        batcher=DynamicBatcher(max_queue_delay_microseconds=settings.max_queue_delay_us),
    )
    text_input = [Tensor(name=TEXT, dtype=bytes, shape=(1,))]
    program = Tensor(name=PROGRAM, dtype=bytes, shape=(1,))
    levels = (
        (DOC_MODEL, doc_writer, doc_outputs, Tensor(name=KEEP_PROB, dtype=np.float32, shape=(1,))),
        (CHUNK_MODEL, chunk_writer, chunk_outputs, Tensor(name=CHUNK_RANGES, dtype=bytes, shape=(1,))),
    )
    for name, writer, outputs, extra in levels:
        model_parameters[name] = _info_parameters(writer)
        triton.bind(
            model_name=name, inputs=text_input, outputs=[program, extra], config=config,
            infer_func=[make_infer_function(outputs(writer), settings.max_text_bytes) for _ in range(instances)],
        )


def serve(doc_writer: DocWriter, chunk_writer: ChunkWriter, settings: TritonServerSettings, stop: threading.Event,
          instances: int = 1, healthy=lambda: True) -> None:
    """Run Triton until `stop` is set (the CLI sets it on SIGTERM/SIGINT), then shut it down cleanly.
    `healthy()` false (e.g. a writer worker died) stops it with an error, for its supervisor to restart."""
    from pytriton.triton import Triton, TritonConfig

    triton_config = TritonConfig(
        http_port=settings.http_port, grpc_port=settings.grpc_port, metrics_port=settings.metrics_port,
        allow_metrics=True, allow_cpu_metrics=True,
    )
    triton = Triton(config=triton_config)
    try:
        bind_models(triton, doc_writer, chunk_writer, settings, instances)
        triton.run()
        LOGGER.info("serving %s and %s: grpc :%d, http :%d, metrics :%d", DOC_MODEL, CHUNK_MODEL,
                    settings.grpc_port, settings.http_port, settings.metrics_port)
        while not stop.wait(0.5):
            if not triton.is_alive():
                raise RuntimeError("tritonserver exited unexpectedly")
            if not healthy():
                raise RuntimeError("a writer worker process died")
    finally:
        triton.stop()
