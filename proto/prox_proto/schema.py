"""JSON Schema of every producer- and consumer-facing message (`prox schema`)."""
from __future__ import annotations

import json
from typing import Any

import msgspec

from .messages import DeadLetter, RawDocument, RefinedDocument
from .report import ExecutionReport

PUBLIC_MESSAGES: dict[str, type] = {
    "raw": RawDocument,
    "refined": RefinedDocument,
    "dropped": RefinedDocument,
    "dlq": DeadLetter,
    "execution_report": ExecutionReport,
}


def json_schemas() -> dict[str, Any]:
    """One self-contained JSON Schema per public message, keyed by topic role."""
    return {role: msgspec.json.schema(type_) for role, type_ in PUBLIC_MESSAGES.items()}


def schema_json() -> str:
    return json.dumps(json_schemas(), indent=2, sort_keys=True)
