"""Topic names and the wire format each topic carries."""
from __future__ import annotations

import msgspec

RAW = "prox.raw"
DOC_PROGRAMS = "prox.doc-programs"
KEPT = "prox.kept"
CHUNK_PROGRAMS = "prox.chunk-programs"
REFINED = "prox.refined"
DROPPED = "prox.dropped"
DLQ = "prox.dlq"

ALL = (RAW, DOC_PROGRAMS, KEPT, CHUNK_PROGRAMS, REFINED, DROPPED, DLQ)


class Topics(msgspec.Struct, kw_only=True):
    """Topic names as configured; every field defaults to the standard name."""

    raw: str = RAW
    doc_programs: str = DOC_PROGRAMS
    kept: str = KEPT
    chunk_programs: str = CHUNK_PROGRAMS
    refined: str = REFINED
    dropped: str = DROPPED
    dlq: str = DLQ

    def all(self) -> list[str]:
        return [getattr(self, f) for f in self.__struct_fields__]
