"""A refined (or dropped) message as one row: the columns a trainer, datatrove or HF `datasets` read directly.

`metadata` and `models` are JSON strings (their shapes vary per source); report fields are flat columns
prefixed `report_`; `ingest_time` is seconds since the epoch, as in the message.
"""
from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from prox_proto import RefinedDocument

REPORT_FIELDS = (
    ("outcome", pa.string()), ("drop_reason", pa.string()), ("program_ignored", pa.bool_()),
    ("calls_applied", pa.int64()), ("lines_removed", pa.int64()), ("chars_removed", pa.int64()),
    ("chars_added", pa.int64()), ("doc_errors", pa.int64()), ("chunk_errors", pa.int64()),
    ("words_in", pa.int64()), ("words_out", pa.int64()),
)

SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("text", pa.string()), ("url", pa.string()), ("source", pa.string()),
        ("metadata", pa.string()), ("dropped", pa.bool_()), ("doc_program", pa.string()),
        ("chunk_program", pa.string()), ("keep_prob", pa.float64()),
    ]
    + [(f"report_{name}", kind) for name, kind in REPORT_FIELDS]
    + [("report_errors", pa.string()), ("doc_model", pa.string()), ("doc_model_version", pa.string()),
       ("chunk_model", pa.string()), ("chunk_model_version", pa.string()), ("models", pa.string()),
       ("ingest_time", pa.float64())]
)
COLUMNS = tuple(SCHEMA.names)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def to_row(doc: RefinedDocument) -> dict[str, Any]:
    report = doc.report
    row: dict[str, Any] = {
        "id": doc.id, "text": doc.text, "url": doc.url, "source": doc.source, "metadata": _json(doc.metadata),
        "dropped": doc.dropped, "doc_program": doc.doc_program, "chunk_program": doc.chunk_program,
        "keep_prob": doc.keep_prob,
    }
    for name, _ in REPORT_FIELDS:
        row[f"report_{name}"] = getattr(report, name) if report is not None else None
    row["report_errors"] = (_json([{"statement": e.statement, "reason": e.reason} for e in report.errors])
                            if report is not None else None)
    models = {m.name: m for m in doc.models}
    doc_model = models.get("prox_doc") or (doc.models[0] if doc.models else None)
    chunk_model = models.get("prox_chunk") or (doc.models[1] if len(doc.models) > 1 else None)
    row["doc_model"] = doc_model.name if doc_model else None
    row["doc_model_version"] = doc_model.version if doc_model else None
    row["chunk_model"] = chunk_model.name if chunk_model else None
    row["chunk_model_version"] = chunk_model.version if chunk_model else None
    row["models"] = _json([{"name": m.name, "version": m.version, "backend": m.backend} for m in doc.models])
    row["ingest_time"] = doc.ingest_time
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)
