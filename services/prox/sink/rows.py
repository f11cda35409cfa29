"""A refined (or dropped) message as one row: the columns a trainer, datatrove or HF `datasets` read directly.

Every shard has the same schema, so a folder of shards reads as one table. `models` and `report_errors`
are lists of structs. `metadata` is free-form per source, so it is a fixed struct rather than one inferred
from its keys (shards would disagree): `entries`, its key/value pairs (strings verbatim, null as null,
any other value as its JSON text), and `json`, the whole object as JSON (null when the message had none).
Not a MAP: `datasets` has no type for it, and datatrove merges a `metadata` column into its own metadata
dict, which needs a struct (docs/sink.md). Report fields are flat columns prefixed `report_`;
`ingest_time` is seconds since the epoch, as in the message.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import pyarrow as pa

from prox_proto import RefinedDocument

REPORT_FIELDS = (
    ("outcome", pa.string()), ("drop_reason", pa.string()), ("program_ignored", pa.bool_()),
    ("calls_applied", pa.int64()), ("lines_removed", pa.int64()), ("chars_removed", pa.int64()),
    ("chars_added", pa.int64()), ("doc_errors", pa.int64()), ("chunk_errors", pa.int64()),
    ("words_in", pa.int64()), ("words_out", pa.int64()),
)

METADATA = pa.struct([
    ("entries", pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))),
    ("json", pa.string()),
])
ERRORS = pa.list_(pa.struct([("statement", pa.string()), ("reason", pa.string()), ("level", pa.string())]))
MODELS = pa.list_(pa.struct([("name", pa.string()), ("version", pa.string()), ("backend", pa.string())]))

SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("text", pa.string()), ("url", pa.string()), ("source", pa.string()),
        ("metadata", METADATA), ("dropped", pa.bool_()), ("doc_program", pa.string()),
        ("chunk_program", pa.string()), ("keep_prob", pa.float64()),
    ]
    + [(f"report_{name}", kind) for name, kind in REPORT_FIELDS]
    + [("report_errors", ERRORS), ("doc_model", pa.string()), ("doc_model_version", pa.string()),
       ("chunk_model", pa.string()), ("chunk_model_version", pa.string()), ("models", MODELS),
       ("ingest_time", pa.float64())]
)
COLUMNS = tuple(SCHEMA.names)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def metadata_value(metadata: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The `metadata` column's value: never null, so datatrove can merge it into its metadata dict."""
    entries = [{"key": key, "value": value if value is None or isinstance(value, str) else _json(value)}
               for key, value in (metadata or {}).items()]
    return {"entries": entries, "json": _json(metadata)}


def to_row(doc: RefinedDocument) -> dict[str, Any]:
    report = doc.report
    row: dict[str, Any] = {
        "id": doc.id, "text": doc.text, "url": doc.url, "source": doc.source, "metadata": metadata_value(doc.metadata),
        "dropped": doc.dropped, "doc_program": doc.doc_program, "chunk_program": doc.chunk_program,
        "keep_prob": doc.keep_prob,
    }
    for name, _ in REPORT_FIELDS:
        row[f"report_{name}"] = getattr(report, name) if report is not None else None
    row["report_errors"] = ([{"statement": e.statement, "reason": e.reason, "level": e.level} for e in report.errors]
                            if report is not None else None)
    models = {m.name: m for m in doc.models}
    doc_model = models.get("prox_doc") or (doc.models[0] if doc.models else None)
    chunk_model = models.get("prox_chunk") or (doc.models[1] if len(doc.models) > 1 else None)
    row["doc_model"] = doc_model.name if doc_model else None
    row["doc_model_version"] = doc_model.version if doc_model else None
    row["chunk_model"] = chunk_model.name if chunk_model else None
    row["chunk_model_version"] = chunk_model.version if chunk_model else None
    row["models"] = [{"name": m.name, "version": m.version, "backend": m.backend} for m in doc.models]
    row["ingest_time"] = doc.ingest_time
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)
