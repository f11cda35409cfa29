"""chunk-refiner: kept documents → Triton `prox_chunk` → whole-document chunk programs."""
from __future__ import annotations

from prox_proto import ChunkProgram, KeptDocument

from .base import RefinerStage


class ChunkRefiner(RefinerStage):
    name = "chunk-refiner"
    model = "prox_chunk"
    input_role = "kept"
    output_role = "chunk_programs"

    async def call_model(self, texts):
        return await self.client.chunk_programs(texts)

    def build(self, document: KeptDocument, decision, elapsed: float) -> ChunkProgram:
        fields = {name: getattr(document, name) for name in document.__struct_fields__}
        fields["timings"] = {**document.timings, "chunk_refiner_s": round(elapsed, 6)}
        return ChunkProgram(
            **fields, chunk_program=decision.program,
            chunk_ranges=[tuple(r) for r in decision.chunk_ranges], chunk_model=self.model_info,
        )
