"""`prox model-server`'s settings, on the common mechanism (flags, PROX_* environment, YAML)."""
from __future__ import annotations

from typing import Annotated, Optional

import msgspec

from ..common.config import LogLevel, _doc

BACKEND = _doc("writer backend: heuristic (embedded, CPU) or hf (a causal LM, e.g. the released ProX models)",
               pattern="^(heuristic|hf)$")
MODEL = _doc("hf: the model folder (hub layout or save_pretrained); heuristic: an artefact (default: the committed one)")


class DocWriterSettings(msgspec.Struct, kw_only=True):
    backend: Annotated[str, BACKEND] = "heuristic"
    model: Annotated[Optional[str], MODEL] = None
    prompt: Annotated[str, _doc("hf: original (ProX's own ids, right-truncated to 2,000) | fixed (shorten the "
                                "document, keep [/INST])", pattern="^(original|fixed)$")] = "original"
    decode: Annotated[str, _doc("hf: logits (keep_prob from one forward pass) | generate (greedy)",
                                pattern="^(logits|generate)$")] = "logits"
    keep_threshold: Annotated[float, _doc(
        "the writer's decision: keep_doc() when keep_prob >= this (hf logits and heuristic). The executor's "
        "executor.keep_threshold can re-threshold later without the model", ge=0, le=1)] = 0.5


class ChunkWriterSettings(msgspec.Struct, kw_only=True):
    backend: Annotated[str, BACKEND] = "heuristic"
    model: Annotated[Optional[str], MODEL] = None
    tokens: Annotated[int, _doc("hf: token budget of one chunk of numbered lines", ge=1)] = 1500


class TritonServerSettings(msgspec.Struct, kw_only=True):
    http_port: Annotated[int, _doc("Triton HTTP port (/v2/health/ready)", ge=0, le=65535)] = 8000
    grpc_port: Annotated[int, _doc("Triton gRPC port (the services' client)", ge=0, le=65535)] = 8001
    metrics_port: Annotated[int, _doc("Triton's Prometheus metrics port", ge=0, le=65535)] = 8002
    max_batch_size: Annotated[int, _doc(
        "Triton max batch size (dynamic batching); the services' model_batch_size should not exceed it", ge=1)] = 32
    max_queue_delay_us: Annotated[int, _doc("dynamic batcher queue delay (µs)", ge=0)] = 5000
    max_text_bytes: Annotated[int, _doc("larger texts fail alone with INVALID_ARGUMENT", ge=1)] = 4 * 1024 * 1024


class ModelServerSettings(msgspec.Struct, kw_only=True):
    doc: DocWriterSettings = msgspec.field(default_factory=DocWriterSettings)
    chunk: ChunkWriterSettings = msgspec.field(default_factory=ChunkWriterSettings)
    triton: TritonServerSettings = msgspec.field(default_factory=TritonServerSettings)
    device: Annotated[str, _doc("hf: cpu | cuda (bf16 on cuda, fp32 on cpu)")] = "cpu"
    workers: Annotated[int, _doc(
        "writer processes, and Triton instances per model; 0: one per core for CPU writers, one for hf", ge=0)] = 0
    log_level: LogLevel = "INFO"

    def backends(self) -> tuple[str, str]:
        return self.doc.backend, self.chunk.backend

    def worker_count(self, cpus: int) -> int:
        return self.workers or (1 if "hf" in self.backends() else max(1, cpus))

    def writer_options(self, level: str) -> dict:
        """Keyword options of the level's writer (`backends.load_*_writer`)."""
        writer = getattr(self, level)
        if writer.backend != "hf":
            return {"threshold": writer.keep_threshold} if level == "doc" else {}
        options = {"device": self.device, "batch_size": self.triton.max_batch_size}
        if level == "doc":
            options.update(doc_prompt=writer.prompt, doc_decode=writer.decode, keep_threshold=writer.keep_threshold)
        else:
            options.update(chunk_tokens=writer.tokens)
        return options
