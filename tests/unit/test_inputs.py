"""Reading inputs: JSONL(.gz), Parquet and Common Crawl WET, malformed lines reported not sent."""
from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
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
