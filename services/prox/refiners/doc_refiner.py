"""doc-refiner: raw documents → Triton `prox_doc` → doc programs (with keep probability)."""
from __future__ import annotations

from prox_proto import DocProgram, RawDocument, document_id

from ..common.decoding import decode_record
from ..common.stage import Failure
from .base import RefinerStage


class DocRefiner(RefinerStage):
    name = "doc-refiner"
    model = "prox_doc"
    input_role = "raw"
    output_role = "doc_programs"

    def decode(self, record):
        raw = decode_record(record, "raw", max_bytes=self.settings.max_message_bytes)
        if isinstance(raw, Failure):
            return raw
        return _as_document(raw, record.timestamp)

    async def call_model(self, texts):
        return await self.client.doc_programs(texts)

    def build(self, document: DocProgram, decision, elapsed: float) -> DocProgram:
        document.doc_program = decision.program
        document.keep_prob = float(decision.keep_prob)
        document.doc_model = self.model_info
        document.timings = {"doc_refiner_s": round(elapsed, 6)}
        return document


def _as_document(raw: RawDocument, broker_timestamp_ms) -> DocProgram:
    """The raw message as the pipeline carries it: id and ingest time always set."""
    ingest_time = raw.ingest_time if raw.ingest_time is not None else (broker_timestamp_ms or 0) / 1000.0
    return DocProgram(
        id=raw.id if raw.id is not None else document_id(raw.text), text=raw.text, url=raw.url,
        source=raw.source, metadata=raw.metadata, ingest_time=ingest_time, doc_program="",
    )
