"""Topic names and the wire format each topic carries."""
from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

RAW = "prox.raw"
DOC_PROGRAMS = "prox.doc-programs"
KEPT = "prox.kept"
CHUNK_PROGRAMS = "prox.chunk-programs"
REFINED = "prox.refined"
DROPPED = "prox.dropped"
DLQ = "prox.dlq"

ALL = (RAW, DOC_PROGRAMS, KEPT, CHUNK_PROGRAMS, REFINED, DROPPED, DLQ)

# A topic's role in the pipeline: the name of its `Topics` field, and the key of `codec.TOPIC_FORMATS`.
Role = Literal["raw", "doc_programs", "kept", "chunk_programs", "refined", "dropped", "dlq"]


class Topics(msgspec.Struct, kw_only=True):
    """Topic names as configured; every field defaults to the standard name."""

    raw: Annotated[str, Meta(description="documents from the crawl producers (JSON)")] = RAW
    doc_programs: Annotated[str, Meta(description="doc-refiner -> executor: doc programs (msgpack)")] = DOC_PROGRAMS
    kept: Annotated[str, Meta(description="executor -> chunk-refiner: documents their doc program kept")] = KEPT
    chunk_programs: Annotated[str, Meta(description="chunk-refiner -> executor: chunk programs")] = CHUNK_PROGRAMS
    refined: Annotated[str, Meta(description="the refined documents, for the trainers (JSON)")] = REFINED
    dropped: Annotated[str, Meta(description="documents a program dropped, with the reason (JSON)")] = DROPPED
    dlq: Annotated[str, Meta(description="dead letters: messages at fault, with the reason (JSON)")] = DLQ

    def all(self) -> list[str]:
        return [getattr(self, f) for f in self.__struct_fields__]

    def name(self, role: Role) -> str:
        """The configured topic name of a role."""
        if role not in self.__struct_fields__:
            raise KeyError(f"no topic role {role!r}; roles: {', '.join(self.__struct_fields__)}")
        return getattr(self, role)

    def role_of(self, topic: str) -> Role:
        """The role of a configured topic name (the first, if two roles share a topic)."""
        for role in self.__struct_fields__:
            if getattr(self, role) == topic:
                return role
        raise KeyError(f"topic {topic!r} has no role in this configuration")
