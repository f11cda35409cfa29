"""chunk-refiner: kept documents → Triton `prox_chunk` → whole-document chunk programs."""
from __future__ import annotations

import msgspec

from prox_proto import ChunkProgram, KeptDocument
from prox_proto.triton import CHUNK_MODEL

from ..common.stage import Incoming
from .base import RefinerStage


class ChunkRefiner(RefinerStage):
    name = "chunk-refiner"
    model = CHUNK_MODEL
    accepts = {"kept": KeptDocument}
    output_role = "chunk_programs"

    async def call_model(self, texts):
        return await self.client.chunk_programs(texts)

    def build(self, incoming: Incoming[KeptDocument], decision, elapsed: float) -> ChunkProgram:
        kept = incoming.message
        return ChunkProgram(
            **{**msgspec.structs.asdict(kept), "timings": {**kept.timings, "chunk_refiner_s": round(elapsed, 6)}},
            chunk_program=decision.program, chunk_ranges=[tuple(r) for r in decision.chunk_ranges],
            chunk_model=self.model_info,
        )
