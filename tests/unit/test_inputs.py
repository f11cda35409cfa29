"""Reading inputs: JSONL(.gz), Parquet and Common Crawl WET, malformed lines reported not sent."""
from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pytest
import pyarrow.parquet as pq
from warcio.warcwriter import WARCWriter

from prox.common.inputs import Fields, Malformed, read_documents
from prox_proto import document_id


def test_jsonl_gz_with_configured_fields_and_malformed_lines(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"doc": "first text", "key": 7, "link": "https://a.example/"}) + "\n")
        out.write("not json\n\n")
        out.write(json.dumps({"doc": 5}) + "\n")
        out.write(json.dumps({"doc": "no id here"}) + "\n")
    items = list(read_documents(path, Fields(text="doc", id="key", url="link")))
    assert [type(i).__name__ for i in items] == ["RawDocument", "Malformed", "Malformed", "RawDocument"]
    assert (items[0].id, items[0].url) == ("7", "https://a.example/")
    assert [m.line for m in items if isinstance(m, Malformed)] == [2, 4]
    assert items[3].id == document_id("no id here")


def test_parquet(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["alpha beta", "gamma"], "id": ["a", None]}), path)
    docs = list(read_documents(path))
    assert [(d.id, d.text) for d in docs] == [("a", "alpha beta"), (document_id("gamma"), "gamma")]


def test_common_crawl_wet(tmp_path):
    path = tmp_path / "in.warc.wet.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        writer.write_record(writer.create_warc_record("", "warcinfo", payload=io.BytesIO(b"software: test")))
        for uri, text in [("https://x.example/1", "Bonjour le monde\nDeuxième ligne"), ("https://x.example/2", "Zwei")]:
            record = writer.create_warc_record(uri, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                                               warc_content_type="text/plain")
            writer.write_record(record)
    docs = list(read_documents(path))
    assert [(d.url, d.text) for d in docs] == [("https://x.example/1", "Bonjour le monde\nDeuxième ligne"),
                                               ("https://x.example/2", "Zwei")]
    assert all(d.id.startswith("<urn:uuid:") for d in docs)


def test_ids_are_strings_or_decimal_integers_and_anything_else_is_a_malformed_line(tmp_path):
    path = tmp_path / "in.jsonl"
    ids = ["s", 12, 2**70, ["list"], {"k": 1}, 1.5, True, None]
    path.write_text("".join(json.dumps({"id": value, "text": f"t{n}"}) + "\n" for n, value in enumerate(ids)))
    items = list(read_documents(path))
    assert [(type(i).__name__, getattr(i, "id", None) or i.line) for i in items] == [
        ("RawDocument", "s"), ("RawDocument", "12"), ("RawDocument", str(2**70)), ("Malformed", 4),
        ("Malformed", 5), ("Malformed", 6), ("Malformed", 7), ("RawDocument", document_id("t7"))]
    assert "id must be a string or an integer, not list" in items[3].reason


def test_ids_on_the_raw_topic_follow_the_same_rule():
    from prox.common.decoding import decode_message
    from prox.common.stage import Failure, Incoming
    from prox.refiners.doc_refiner import DocRefiner

    decoded = decode_message(b'{"id": 42, "text": "t"}', "raw")
    assert DocRefiner.document_id(None, Incoming("raw", decoded, 0)) == "42"
    for bad in (b'["list"]', b'{"k": 1}', b"1.5", b"true"):
        failure = decode_message(b'{"id": ' + bad + b', "text": "t"}', "raw")
        assert isinstance(failure, Failure) and failure.reason == "invalid_message", bad


def test_prox_execute_refuses_ids_that_are_not_strings_or_integers():
    from prox.executor.stream import MalformedLine, decode_record

    assert decode_record(b'{"id": 7, "text": "t"}')["id"] == "7"
    with pytest.raises(MalformedLine, match="id must be a string or an integer"):
        decode_record(b'{"id": ["list"], "text": "t"}')
