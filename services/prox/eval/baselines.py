"""Reference program writers the heuristic is judged against, run through the same executor."""
from __future__ import annotations

from typing import Callable, Sequence

from prox.models.backends import ChunkDecision
from prox.executor.program import chunk_program, removal_runs

C4_TERMINAL = (".", "!", "?", '"')


def c4_line_rule_program(text: str) -> str:
    """C4's line rule as a chunk program: keep lines that end in terminal punctuation and have >= 5 words."""
    lines = text.split("\n")
    removed = [not (line.rstrip().endswith(C4_TERMINAL) and len(line.split()) >= 5) for line in lines]
    return chunk_program(removal_runs(removed))


def keep_everything_program(text: str) -> str:
    return "keep_chunk()"


class FixedRuleWriter:
    """A chunk writer for a rule: one whole-document chunk, the rule's program."""

    def __init__(self, program_for: Callable[[str], str]):
        self.program_for = program_for

    def write(self, texts: Sequence[str]) -> list[ChunkDecision]:
        return [ChunkDecision(self.program_for(t), [(0, t.count("\n"))]) for t in texts]
