"""What a service's processing step returns: outputs to produce, or a reason to dead-letter."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence, Union


@dataclass
class Output:
    topic: str
    key: Optional[bytes]
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    outcome: str = "out"  # metrics label: programmed | kept | refined | dropped | dead_letter
    reason: Optional[str] = None  # dead letters only
    ingest_time: Optional[float] = None  # for end-to-end latency
    words: int = 0  # words kept (refined outputs)


@dataclass
class Failure:
    """A per-message failure: the message goes to the dead-letter topic, the partition moves on."""

    reason: str  # oversize | undecodable | invalid_message | unsupported_version | model_error | processing_error
    error_class: str
    error: str
    doc_id: Optional[str] = None


Result = Union[list[Output], Failure]


class InfrastructureError(RuntimeError):
    """A dependency (model server, broker) is unavailable: the records are retried later, never dead-lettered."""


class Stage(Protocol):
    """A service's box in the diagram: decode → call → encode, for a batch of records."""

    name: str

    def input_topics(self) -> list[str]: ...

    async def start(self) -> None: ...

    def ready(self) -> bool: ...

    async def process(self, records: Sequence) -> list[Result]: ...

    async def close(self) -> None: ...
