"""The contract between a service's stage and the shared runtime.

A stage declares the message type it accepts per input topic role (`accepts`, as Morpheus stages declare
`accepted_types` and Faust agents a `value_type`); the runtime decodes each record into that type, so a
stage only ever sees valid messages. The stage answers each message with what to emit (`Emit`: a topic
role and a message, encoded and keyed by the runtime) or a `Failure` — failures travel as values, like
Bytewax's second stream, and become dead letters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Mapping, Optional, Protocol, Sequence, TypeVar, Union

from prox_proto.topics import Role

M = TypeVar("M")


@dataclass(frozen=True)
class Incoming(Generic[M]):
    """A decoded input message and what the stage may need of its record."""

    role: Role
    message: M
    timestamp_ms: Optional[int] = None  # the broker timestamp


@dataclass(frozen=True)
class Emit:
    """One message to produce on the topic of `role`, keyed by the message's document id."""

    role: Role
    message: Any  # a prox_proto struct with an `id`
    outcome: str  # metrics label: programmed | kept | refined | dropped
    words: int = 0  # words kept (refined outputs)


@dataclass
class Failure:
    """A per-message failure: the message goes to the dead-letter topic, the partition moves on."""

    reason: str  # oversize | undecodable | invalid_message | unsupported_version | model_error | processing_error
    error_class: str
    error: str
    doc_id: Optional[str] = None


Result = Union[list[Emit], Failure]


@dataclass
class Output:
    """An encoded message for the producer (the runtime builds these from `Emit`s and dead letters)."""

    topic: str
    key: Optional[bytes]
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    outcome: str = "out"  # metrics label: programmed | kept | refined | dropped | dead_letter
    reason: Optional[str] = None  # dead letters only
    ingest_time: Optional[float] = None  # for end-to-end latency
    words: int = 0  # words kept (refined outputs)


class InfrastructureError(RuntimeError):
    """A dependency (model server, broker) is unavailable: the records are retried later, never dead-lettered."""


class Stage(Protocol):
    """A service's box in the diagram: typed messages in, typed messages (or failures) out, for a batch."""

    name: str
    accepts: Mapping[Role, type]  # input topic role -> the message type it carries

    async def start(self) -> None: ...

    def ready(self) -> bool: ...

    async def process(self, batch: Sequence[Incoming]) -> list[Result]: ...

    async def close(self) -> None: ...
