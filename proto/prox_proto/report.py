"""The executor's report: what a program did to one document (a contract shared by every stage)."""
from __future__ import annotations

from typing import Literal, Optional

import msgspec

Outcome = Literal["kept", "edited", "dropped"]
DropReason = Literal["doc_program", "keep_ratio", "min_words"]


class ProgramError(msgspec.Struct, frozen=True):
    statement: str
    reason: str
    level: Literal["doc", "chunk"] = "chunk"  # which program the statement belongs to


class ExecutionReport(msgspec.Struct, kw_only=True):
    outcome: Outcome
    drop_reason: Optional[DropReason] = None
    program_ignored: bool = False
    errors: list[ProgramError] = []
    calls_applied: int = 0
    lines_removed: int = 0
    chars_removed: int = 0
    chars_added: int = 0
    doc_errors: int = 0
    chunk_errors: int = 0
    words_in: int = 0
    words_out: int = 0
