"""A refiner: a batch of documents → one Triton model call → a program per document. Model-agnostic:
it knows the Triton contract (prox_proto.triton) through its client, never a prompt or a tokenizer."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from prox_proto import ModelInfo
from prox_proto.topics import Role

from ..common.config import RefinerSettings
from ..common.stage import Emit, Failure, Incoming, Result
from .triton_client import DocumentError, TritonRefinerClient


class RefinerStage:
    name: str
    model: str  # Triton model name
    accepts: Mapping[Role, type]  # the one input role and its message type
    output_role: Role

    def __init__(self, settings: RefinerSettings, client=None):
        self.settings = settings
        self.client = client
        self.model_info = ModelInfo(name=self.model)
        self._ready = False

    async def start(self) -> None:
        if self.client is None:
            triton = self.settings.triton
            self.client = TritonRefinerClient(
                url=triton.url, concurrency=triton.concurrency, request_timeout_s=triton.timeout_s,
                backoff_initial_s=triton.backoff_initial_s, backoff_max_s=triton.backoff_max_s,
                max_batch_size=self.settings.model_batch_size, document_attempts=triton.document_attempts,
            )
        await self.client.wait_ready()
        self.model_info = await self.client.model_info(self.model)
        self._ready = True

    def ready(self) -> bool:
        return self._ready

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def process(self, batch: Sequence[Incoming]) -> list[Result]:
        started = time.monotonic()
        decisions = await self.call_model([incoming.message.text for incoming in batch])
        elapsed = time.monotonic() - started
        return [self._result(incoming, decision, elapsed) for incoming, decision in zip(batch, decisions)]

    def _result(self, incoming: Incoming, decision, elapsed: float) -> Result:
        if isinstance(decision, DocumentError):
            return Failure("model_error", decision.error_class, decision.message, doc_id=self.document_id(incoming))
        return [Emit(self.output_role, self.build(incoming, decision, elapsed), outcome="programmed")]

    def document_id(self, incoming: Incoming) -> str:
        return incoming.message.id

    async def call_model(self, texts: list[str]) -> list:
        raise NotImplementedError

    def build(self, incoming: Incoming, decision, elapsed: float) -> Any:
        raise NotImplementedError
