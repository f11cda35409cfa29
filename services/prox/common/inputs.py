"""Reading documents from files: JSONL, JSONL.gz, Parquet, Common Crawl WET. Streaming, constant memory."""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

from prox_proto import RawDocument, document_id


@dataclass
class Fields:
    text: str = "text"
    id: str = "id"
    url: str = "url"
    source: str = "source"
    metadata: str = "metadata"


@dataclass
class Malformed:
    line: int
    reason: str


Item = Union[RawDocument, Malformed]


def open_text(path: Union[str, Path], mode: str = "rt"):
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8") if "t" in mode else gzip.open(path, mode)
    return open(path, mode, encoding="utf-8") if "t" in mode else open(path, mode)


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
        text=text, id=str(doc_id) if doc_id is not None else document_id(text),
        url=_optional_str(obj.get(fields.url)), source=_optional_str(obj.get(fields.source)),
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def _optional_str(value) -> Optional[str]:
    return None if value is None else str(value)


def _jsonl(path, fields: Fields) -> Iterator[Item]:
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield _document(json.loads(line), fields)
            except (ValueError, TypeError) as exc:
                yield Malformed(number, str(exc)[:200])


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
