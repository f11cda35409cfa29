"""The executor's settings: the program-execution options (shared by the service and `prox execute`) and
the executor service's settings."""
from __future__ import annotations

from typing import Annotated, Optional

import msgspec

from ..common.config import ServiceSettings, _doc


class ExecutorOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How programs are executed; the single source of these settings (the service, `prox execute`, eval).
    Checked on construction (`__post_init__`), from flags and files alike."""

    max_errors: Annotated[int, _doc("a chunk program with at least this many statement errors is ignored")] = 2
    min_keep_ratio: Annotated[float, _doc("drop when kept words / original words is at most this")] = 0.05
    min_words: Annotated[int, _doc("drop when fewer words remain")] = 11
    deletion_only: Annotated[bool, _doc(
        "a normalize whose target is not its source with characters deleted is an error")] = False
    max_growth: Annotated[Optional[float], _doc(
        "a normalize that would make the text longer than this factor x its original length is an error")] = None
    keep_threshold: Annotated[Optional[float], _doc(
        "re-threshold: when a document has keep_prob, keep it iff keep_prob >= this, instead of its doc program "
        "(the model server's doc.keep_threshold is the writer's own decision)")] = None

    def __post_init__(self) -> None:
        if self.max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        if self.max_growth is not None and self.max_growth <= 0:
            raise ValueError("max_growth must be positive")
        if self.keep_threshold is not None and not 0.0 <= self.keep_threshold <= 1.0:
            raise ValueError("keep_threshold must be between 0 and 1")


class ExecutorServiceSettings(ServiceSettings, kw_only=True):
    executor: ExecutorOptions = msgspec.field(default_factory=ExecutorOptions)
