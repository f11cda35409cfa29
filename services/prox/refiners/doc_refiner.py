"""doc-refiner: raw documents → Triton `prox_doc` → doc programs (with keep probability)."""
from __future__ import annotations

import msgspec

from prox_proto import DocProgram, RawDocument, canonical_id, document_id
from prox_proto.triton import DOC_MODEL

from ..common.stage import Incoming
from .base import RefinerStage


class DocRefiner(RefinerStage):
    name = "doc-refiner"
    model = DOC_MODEL
    accepts = {"raw": RawDocument}
    output_role = "doc_programs"

    async def call_model(self, texts):
        return await self.client.doc_programs(texts)

    def document_id(self, incoming: Incoming[RawDocument]) -> str:
        raw = incoming.message
        return canonical_id(raw.id) if raw.id is not None else document_id(raw.text)

    def build(self, incoming: Incoming[RawDocument], decision, elapsed: float) -> DocProgram:
        """The raw message as the pipeline carries it (id and ingest time always set), with its program."""
        raw = incoming.message
        ingest_time = raw.ingest_time if raw.ingest_time is not None else (incoming.timestamp_ms or 0) / 1000.0
        return DocProgram(
            **{**msgspec.structs.asdict(raw), "id": self.document_id(incoming), "ingest_time": ingest_time},
            doc_program=decision.program, keep_prob=float(decision.keep_prob), doc_model=self.model_info,
            timings={"doc_refiner_s": round(elapsed, 6)},
        )
