"""Encoding and decoding per topic, with version checks."""
from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from .messages import (
    SCHEMA_VERSION,
    ChunkProgram,
    DeadLetter,
    DocProgram,
    KeptDocument,
    RawDocument,
    RefinedDocument,
)

T = TypeVar("T")


class UnsupportedVersion(ValueError):
    """A message announced a schema version this build does not understand."""


_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_json_decoders: dict[type, msgspec.json.Decoder] = {}
_msgpack_decoders: dict[type, msgspec.msgpack.Decoder] = {}


def encode_json(message: Any) -> bytes:
    return _json_encoder.encode(message)


def encode_msgpack(message: Any) -> bytes:
    return _msgpack_encoder.encode(message)


def _checked(message: T) -> T:
    version = getattr(message, "v", SCHEMA_VERSION)
    if version > SCHEMA_VERSION or version < 1:
        raise UnsupportedVersion(f"message version v={version}; this build reads v1..v{SCHEMA_VERSION}")
    return message


def decode_json(payload: bytes, type_: type[T]) -> T:
    decoder = _json_decoders.get(type_)
    if decoder is None:
        decoder = _json_decoders[type_] = msgspec.json.Decoder(type_)
    return _checked(decoder.decode(payload))


def decode_msgpack(payload: bytes, type_: type[T]) -> T:
    decoder = _msgpack_decoders.get(type_)
    if decoder is None:
        decoder = _msgpack_decoders[type_] = msgspec.msgpack.Decoder(type_)
    return _checked(decoder.decode(payload))


# Which struct and which wire format each topic role carries.
TOPIC_FORMATS: dict[str, tuple[type, str]] = {
    "raw": (RawDocument, "json"),
    "doc_programs": (DocProgram, "msgpack"),
    "kept": (KeptDocument, "msgpack"),
    "chunk_programs": (ChunkProgram, "msgpack"),
    "refined": (RefinedDocument, "json"),
    "dropped": (RefinedDocument, "json"),
    "dlq": (DeadLetter, "json"),
}


def encode_for(role: str, message: Any) -> bytes:
    _, fmt = TOPIC_FORMATS[role]
    return encode_json(message) if fmt == "json" else encode_msgpack(message)


def decode_for(role: str, payload: bytes) -> Any:
    type_, fmt = TOPIC_FORMATS[role]
    return decode_json(payload, type_) if fmt == "json" else decode_msgpack(payload, type_)
