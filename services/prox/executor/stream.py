"""Streaming JSONL execution: the engine behind `prox execute` (one line in memory at a time)."""
from __future__ import annotations

import gzip
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Optional

import msgspec

from prox_proto.messages import canonical_id, document_id

from .execute import DEFAULT_OPTIONS, ExecutorOptions, execute_document

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class MalformedLine(ValueError):
    """An input line that is not a JSON object with a string `text` and well-typed program fields."""


@dataclass
class StreamStats:
    read: int = 0
    written: int = 0
    dropped: int = 0
    malformed: int = 0


@contextmanager
def open_binary(path: str, mode: str) -> Iterator[IO[bytes]]:
    """Open a path for binary reading or writing; `.gz` is gzip, `-` is stdin/stdout."""
    if path == "-":
        yield sys.stdin.buffer if mode == "rb" else sys.stdout.buffer
        return
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, mode) as handle:
        yield handle


def _optional(record: dict[str, Any], key: str, types: tuple[type, ...]) -> Any:
    value = record.get(key)
    if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
        raise MalformedLine(f"{key!r} must be {' or '.join(t.__name__ for t in types)} or null")
    return value


def decode_record(line: bytes) -> dict[str, Any]:
    try:
        record = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise MalformedLine(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise MalformedLine("not a JSON object")
    if not isinstance(record.get("text"), str):
        raise MalformedLine("no string field 'text'")
    if record.get("id") is not None:
        try:
            record["id"] = canonical_id(record["id"])
        except ValueError as exc:
            raise MalformedLine(str(exc)) from None
    _optional(record, "doc_program", (str,))
    _optional(record, "chunk_program", (str,))
    _optional(record, "keep_prob", (int, float))
    return record


def execute_record(record: dict[str, Any], options: ExecutorOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """The output object for one decoded input record; other input fields are passed through after it.

    A record without an id gets the pipeline's default id, the sha256 of its text."""
    text = record["text"]
    execution = execute_document(text, record.get("doc_program"), record.get("chunk_program"),
                                 record.get("keep_prob"), options)
    record_id = record.get("id")
    output = {
        "id": record_id if record_id is not None else document_id(text),
        "text": execution.text,
        "dropped": execution.dropped,
        "report": execution.report,
    }
    output.update((key, value) for key, value in record.items() if key not in output)
    return output


def execute_lines(lines: Iterable[bytes], output: IO[bytes], options: ExecutorOptions = DEFAULT_OPTIONS,
                  errors: Optional[IO[str]] = None) -> StreamStats:
    """Execute every JSONL line from `lines`, writing one output line per valid input line, in order."""
    stats = StreamStats()
    for number, line in enumerate(lines, start=1):
        stats.read += 1
        try:
            record = decode_record(line)
        except MalformedLine as exc:
            stats.malformed += 1
            print(f"line {number}: malformed input: {exc}", file=errors or sys.stderr)
            continue
        result = execute_record(record, options)
        output.write(_encoder.encode(result))
        output.write(b"\n")
        stats.written += 1
        stats.dropped += result["dropped"]
    return stats


def execute_file(input_path: str, output_path: str, options: ExecutorOptions = DEFAULT_OPTIONS,
                 errors: Optional[IO[str]] = None) -> StreamStats:
    with open_binary(input_path, "rb") as source, open_binary(output_path, "wb") as sink:
        return execute_lines(source, sink, options, errors)
