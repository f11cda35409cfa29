"""A refiner: decode a batch → one Triton model call → encode the programs. Model-agnostic."""
from __future__ import annotations

import time
from typing import Any, Sequence

from prox_proto import ModelInfo, encode_for

from ..common.config import Settings
from ..common.decoding import decode_record
from ..common.stage import Failure, Output, Result


class RefinerStage:
    name: str
    model: str  # Triton model name
    input_role: str  # topic role of the input
    output_role: str

    def __init__(self, settings: Settings, client=None):
        self.settings = settings
        self.client = client
        self.model_info = ModelInfo(name=self.model)
        self._ready = False

    def input_topics(self) -> list[str]:
        return [getattr(self.settings.topics, self.input_role)]

    async def start(self) -> None:
        if self.client is None:
            from ..models.client import TritonRefinerClient

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

    async def process(self, records: Sequence) -> list[Result]:
        results: list[Result] = [None] * len(records)  # type: ignore[list-item]
        documents: list[tuple[int, Any]] = []
        for index, record in enumerate(records):
            decoded = self.decode(record)
            if isinstance(decoded, Failure):
                results[index] = decoded
            else:
                documents.append((index, decoded))
        started = time.monotonic()
        decisions = await self.call_model([document.text for _, document in documents]) if documents else []
        elapsed = time.monotonic() - started
        for (index, document), decision in zip(documents, decisions):
            results[index] = self._result(document, decision, elapsed)
        return results

    def _result(self, document, decision, elapsed: float) -> Result:
        from ..models.client import DocumentError

        if isinstance(decision, DocumentError):
            return Failure("model_error", decision.error_class, decision.message, doc_id=document.id)
        message = self.build(document, decision, elapsed)
        topic = getattr(self.settings.topics, self.output_role)
        return [Output(topic=topic, key=message.id.encode(), value=encode_for(self.output_role, message),
                       outcome="programmed", ingest_time=message.ingest_time)]

    def decode(self, record) -> Any:
        return decode_record(record, self.input_role)

    async def call_model(self, texts: list[str]) -> list:
        raise NotImplementedError

    def build(self, document, decision, elapsed: float) -> Any:
        raise NotImplementedError
