"""Decoding a Kafka record into the message its topic role carries, or a dead-letter reason."""
from __future__ import annotations

from typing import Any, Optional, Union

import msgspec

from prox_proto import UnsupportedVersion, decode_for
from prox_proto.topics import Role

from .stage import Failure


def decode_message(value: Optional[bytes], role: Role, max_bytes: Optional[int] = None) -> Union[Any, Failure]:
    if value is None:
        return Failure("undecodable", "EmptyMessage", "the message has no value")
    if max_bytes is not None and len(value) > max_bytes:
        return Failure("oversize", "MessageTooLarge", f"{len(value)} bytes > limit {max_bytes}")
    try:
        return decode_for(role, value)
    except UnsupportedVersion as exc:
        return Failure("unsupported_version", type(exc).__name__, str(exc))
    except msgspec.ValidationError as exc:
        return Failure("invalid_message", type(exc).__name__, str(exc))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Failure("undecodable", type(exc).__name__, str(exc))
