"""Reading documents from files: JSONL, JSONL.gz, Parquet, Common Crawl WET. Streaming, constant memory."""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from prox_proto import RawDocument, canonical_id, document_id


@dataclass
class Fields:
    text: str = "text"
    id: str = "id"
    url: str = "url"
    source: str = "source"
    metadata: str = "metadata"


@dataclass
class Malformed:
    """A line that is not a document: reported and skipped."""

    line: int
    reason: str


@dataclass
class Repaired:
    """The next document had text with no UTF-8 form (lone surrogates): each such character became U+FFFD."""

    line: int
    reason: str


Item = Union[RawDocument, Malformed, Repaired]

# Lone surrogates come from JSON escapes such as "\ud800" with no pair, or from undecodable bytes read with
# surrogateescape. A line can only hold them if it holds one of these.
_MAYBE_SURROGATES = re.compile(r"\\u[dD][89abcdefABCDEF]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def open_text(path: Union[str, Path], mode: str = "rt", errors: str = "strict"):
    path = str(path)
    if "t" not in mode:
        return gzip.open(path, mode) if path.endswith(".gz") else open(path, mode)
    if path.endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8", errors=errors)
    return open(path, mode, encoding="utf-8", errors=errors)


def read_documents(path: Union[str, Path], fields: Fields = Fields(), fmt: Optional[str] = None) -> Iterator[Item]:
    """Documents of a file, each with its id set (sha256 of the text when the file gives none)."""
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        yield from _parquet(path, fields)
    elif fmt == "wet":
        yield from _wet(path)
    else:
        yield from _jsonl(path, fields)


def detect_format(path: Union[str, Path]) -> str:
    name = str(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".wet", ".wet.gz", ".warc.wet.gz", ".warc", ".warc.gz")):
        return "wet"
    return "jsonl"


def _document(obj, fields: Fields) -> RawDocument:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    text = obj.get(fields.text)
    if not isinstance(text, str):
        raise ValueError(f"field {fields.text!r} missing or not a string")
    doc_id = obj.get(fields.id)
    metadata = obj.get(fields.metadata)
    return RawDocument(
        text=text, id=canonical_id(doc_id) if doc_id is not None else document_id(text),
        url=_optional_str(obj.get(fields.url)), source=_optional_str(obj.get(fields.source)),
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def _optional_str(value) -> Optional[str]:
    return None if value is None else str(value)


def _jsonl(path, fields: Fields) -> Iterator[Item]:
    with open_text(path, errors="surrogateescape") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield Malformed(number, str(exc)[:200])
                continue
            if _MAYBE_SURROGATES.search(line):
                obj, repaired = repair_surrogates(obj)
                if repaired:
                    yield Repaired(number, f"{repaired} character(s) with no UTF-8 form replaced by U+FFFD")
            try:
                yield _document(obj, fields)
            except (ValueError, TypeError) as exc:
                yield Malformed(number, str(exc)[:200])


def repair_surrogates(value):
    """(value with every lone surrogate in its strings replaced by U+FFFD, how many were replaced)."""
    if isinstance(value, str):
        return _SURROGATE.subn("\ufffd", value)
    if isinstance(value, list):
        pairs = [repair_surrogates(item) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    if isinstance(value, dict):
        keys, values = repair_surrogates(list(value)), repair_surrogates(list(value.values()))
        return dict(zip(keys[0], values[0])), keys[1] + values[1]
    return value, 0


def _parquet(path, fields: Fields) -> Iterator[Item]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(str(path))
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            try:
                yield _document(row, fields)
            except (ValueError, TypeError) as exc:
                yield Malformed(number, str(exc)[:200])


def _wet(path) -> Iterator[Item]:
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as handle:
        for number, record in enumerate(ArchiveIterator(handle), 1):
            if record.rec_type != "conversion":
                continue
            try:
                text = record.content_stream().read().decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Malformed(number, f"WET record is not UTF-8: {exc}")
                continue
            headers = record.rec_headers
            yield RawDocument(text=text, id=headers.get_header("WARC-Record-ID"),
                              url=headers.get_header("WARC-Target-URI"), source="common-crawl-wet")
