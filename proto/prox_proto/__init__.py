"""ProX Stream contracts: messages, topics, the execution report and their JSON Schemas."""
from .codec import UnsupportedVersion, decode_for, decode_json, decode_msgpack, encode_for, encode_json, encode_msgpack
from .messages import (
    SCHEMA_VERSION,
    ChunkProgram,
    DeadLetter,
    DocProgram,
    KeptDocument,
    ModelInfo,
    RawDocument,
    RefinedDocument,
    canonical_id,
    document_id,
)
from .report import ExecutionReport, ProgramError
from .topics import Topics

__all__ = [
    "SCHEMA_VERSION", "ChunkProgram", "DeadLetter", "DocProgram", "ExecutionReport", "KeptDocument",
    "ModelInfo", "ProgramError", "RawDocument", "RefinedDocument", "Topics", "UnsupportedVersion",
    "canonical_id", "decode_for", "decode_json", "decode_msgpack", "document_id", "encode_for", "encode_json", "encode_msgpack",
]
