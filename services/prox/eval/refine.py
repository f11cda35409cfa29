"""Refining gold inputs with a program-writing backend, through the real executor."""
from __future__ import annotations

from typing import Optional, Sequence

from prox.executor import ExecutorOptions, execute_document

BATCH = 32


def refine(rows: Sequence[dict], doc_writer=None, chunk_writer=None,
           options: ExecutorOptions = ExecutorOptions()) -> tuple[dict[str, Optional[str]], dict[str, float]]:
    """Run the writers' programs on every row's text: (id → refined text or None, id → keep_prob)."""
    outputs: dict[str, Optional[str]] = {}
    keep_probs: dict[str, float] = {}
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        texts = [row["text"] for row in batch]
        doc_decisions = doc_writer.write(texts) if doc_writer else [None] * len(batch)
        chunk_decisions = chunk_writer.write(texts) if chunk_writer else [None] * len(batch)
        for row, doc, chunk in zip(batch, doc_decisions, chunk_decisions):
            execution = execute_document(
                row["text"],
                doc_program=doc.program if doc else None,
                chunk_program=chunk.program if chunk else None,
                keep_prob=doc.keep_prob if doc else None,
                options=options,
            )
            outputs[str(row["id"])] = execution.text
            if doc:
                keep_probs[str(row["id"])] = doc.keep_prob
    return outputs, keep_probs
