"""executor service: stateless; runs doc programs (kept → chunk stage, dropped → dropped topic) and
chunk programs (→ refined or dropped topic). One consumer group reads both program topics."""
from __future__ import annotations

import time
from typing import Sequence

import msgspec

from prox_proto import ChunkProgram, DocProgram, KeptDocument, RefinedDocument

from ..common import metrics
from ..common.stage import Emit, Incoming, Result
from . import execute_document
from .settings import ExecutorServiceSettings
from .program import error_kind

class ExecutorStage:
    name = "executor"
    accepts = {"doc_programs": DocProgram, "chunk_programs": ChunkProgram}

    def __init__(self, settings: ExecutorServiceSettings):
        self.settings = settings
        self.options = settings.executor

    async def start(self) -> None:
        pass

    def ready(self) -> bool:
        return True

    async def close(self) -> None:
        pass

    async def process(self, batch: Sequence[Incoming]) -> list[Result]:
        return [self._run_chunk_program(incoming.message) if incoming.role == "chunk_programs"
                else self._run_doc_program(incoming.message) for incoming in batch]

    def _run_doc_program(self, message: DocProgram) -> Result:
        started = time.perf_counter()
        execution = execute_document(message.text, message.doc_program, None, message.keep_prob, self.options)
        _record_metrics("doc", execution.report)
        metrics.WORDS_IN.labels(self.name).inc(execution.report.words_in)
        timings = {**message.timings, "executor_doc_s": round(time.perf_counter() - started, 6)}
        if execution.dropped:
            return [Emit("dropped", _refined(message, execution, timings, models=[message.doc_model]), "dropped")]
        kept = KeptDocument(**{**msgspec.structs.asdict(message), "timings": timings})
        return [Emit("kept", kept, "kept")]

    def _run_chunk_program(self, message: ChunkProgram) -> Result:
        started = time.perf_counter()
        execution = execute_document(
            message.text, message.doc_program, message.chunk_program, message.keep_prob, self.options
        )
        _record_metrics("chunk", execution.report)
        timings = {**message.timings, "executor_chunk_s": round(time.perf_counter() - started, 6)}
        refined = _refined(message, execution, timings, models=[message.doc_model, message.chunk_model],
                           chunk_program=message.chunk_program, chunk_ranges=message.chunk_ranges)
        role = "dropped" if execution.dropped else "refined"
        return [Emit(role, refined, role, words=0 if execution.dropped else execution.report.words_out)]


def _refined(message: DocProgram, execution, timings, models, chunk_program=None, chunk_ranges=()) -> RefinedDocument:
    return RefinedDocument(
        id=message.id, text=execution.text, dropped=execution.dropped, url=message.url, source=message.source,
        metadata=message.metadata, ingest_time=message.ingest_time, doc_program=message.doc_program,
        chunk_program=chunk_program, keep_prob=message.keep_prob, chunk_ranges=list(chunk_ranges),
        report=execution.report, models=[m for m in models if m is not None], timings=timings,
    )


def _record_metrics(level: str, report) -> None:
    """The level's own errors only: a chunk program's report repeats its doc program's errors."""
    for error in report.errors:
        if error.level == level:
            metrics.EXECUTOR_ERRORS.labels(level, error_kind(error.reason)).inc()
    metrics.EXECUTOR_CALLS.labels(level).observe(report.calls_applied)
    outcome = "ignored" if report.program_ignored else report.outcome
    metrics.EXECUTOR_PROGRAMS.labels(level, outcome).inc()
    if level == "chunk":
        metrics.EXECUTOR_LINES_REMOVED.inc(report.lines_removed)
