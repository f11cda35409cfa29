"""The shard folder as the usual readers open it: the folder itself, not a glob, with nested columns.

Shards are written by the real ShardWriter / Storage / Manifest code, with an open shard's staging file and
the manifest present, as a live sink leaves them. Every reader is a test dependency: a missing one fails here.
"""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from prox.sink.manifest import Manifest
from prox.sink.rows import to_row
from prox.sink.shards import ShardWriter
from prox.sink.storage import Storage
from prox_proto import ExecutionReport, ModelInfo, ProgramError, RefinedDocument

METADATA = {"page_type": "article", "n": 3, "tags": ["a", "b"], "ok": True, "gone": None, "nested": {"x": 1}}


def document(i: int, **changes) -> RefinedDocument:
    values = dict(
        id=f"doc-{i}", text=f"text of {i}", dropped=False, url=f"https://example.org/{i}", source="test",
        metadata={**METADATA, "i": str(i)}, ingest_time=1.7e9 + i, doc_program="keep_doc()",
        chunk_program="remove_lines(0, 1)", keep_prob=0.5,
        report=ExecutionReport(outcome="edited", calls_applied=1, words_in=9, words_out=5,
                               errors=[ProgramError("drop_doc(1)", "bad arguments", "doc"),
                                       ProgramError("bad()", "unknown call")]),
        models=[ModelInfo(name="prox_doc", version="v1", backend="heuristic"),
                ModelInfo(name="prox_chunk", version="v2", backend="hf")],
    )
    values.update(changes)
    return RefinedDocument(**values)


# Three shards whose metadata differs in shape (one has none at all): their schemas must still agree.
DOCS = [[document(0), document(1)], [document(2, metadata={"other": 1.5})],
        [document(3, metadata=None, report=None, models=[])]]
IDS = sorted(doc.id for shard in DOCS for doc in shard)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A data folder with three published shards while a fourth is open (its staging file exists)."""
    path = tmp_path_factory.mktemp("readers") / "shards"
    storage = Storage(str(path), "w")
    manifest = Manifest(storage)
    writer = ShardWriter(storage, "refined", row_group_rows=1)
    offset = 0
    for shard in DOCS:
        for doc in shard:
            writer.add(to_row(doc), doc.id, 100, ("prox.refined", 0), offset)
            offset += 1
        finished = writer.finish()
        manifest.append(finished.entry)
        storage.publish(finished.temp, finished.name)
    writer.add(to_row(document(9)), "doc-9", 100, ("prox.refined", 0), offset)  # written: row_group_rows=1
    assert writer.open.temp.stat().st_size > 0
    return path


def expected_entries(metadata) -> list[dict]:
    """Strings verbatim, null as null, anything else as its JSON text."""
    return [{"key": key, "value": value if value is None or isinstance(value, str)
             else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}
            for key, value in (metadata or {}).items()]


def assert_nested_row(row: dict) -> None:
    """One row as a reader returned it (plain Python values): the nested columns are nested."""
    doc = {d.id: d for shard in DOCS for d in shard}[row["id"]]
    assert row["text"] == doc.text
    assert row["metadata"]["entries"] == expected_entries(doc.metadata)
    assert (json.loads(row["metadata"]["json"]) if row["metadata"]["json"] is not None else None) == doc.metadata
    assert row["models"] == [{"name": m.name, "version": m.version, "backend": m.backend} for m in doc.models]
    expected_errors = [{"statement": e.statement, "reason": e.reason, "level": e.level}
                       for e in doc.report.errors] if doc.report else None
    assert row["report_errors"] == expected_errors


def test_the_data_folder_holds_nothing_but_the_shards(folder):
    names = [p.name for p in folder.rglob("*")]
    assert names and all(name.startswith("refined-") and name.endswith(".parquet") for name in names), names
    assert len(names) == len(DOCS)


def test_every_shard_has_the_same_schema_whatever_its_metadata(folder):
    schemas = {str(pq.read_schema(path)) for path in folder.iterdir()}
    assert len(schemas) == 1


def test_pyarrow_reads_the_folder_with_nested_columns(folder):
    import pyarrow as pa
    import pyarrow.dataset as ds

    for table in (pq.read_table(folder), ds.dataset(folder, format="parquet").to_table()):
        assert sorted(table.column("id").to_pylist()) == IDS
        assert pa.types.is_list(table.schema.field("models").type)
        assert pa.types.is_struct(table.schema.field("metadata").type)
        for row in table.to_pylist():
            assert_nested_row(row)


def test_datasets_load_dataset_reads_the_folder(folder, tmp_path):
    import datasets

    data = datasets.load_dataset("parquet", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf"))
    assert sorted(data["id"]) == IDS
    for row in data:
        assert_nested_row(row)


def test_polars_reads_the_folder(folder):
    import polars as pl

    frame = pl.read_parquet(folder)
    assert isinstance(frame.schema["models"], pl.List) and isinstance(frame.schema["metadata"], pl.Struct)
    assert sorted(frame["id"].to_list()) == IDS
    for row in frame.to_dicts():
        assert_nested_row(row)


def test_duckdb_reads_the_folder(folder):
    import duckdb

    rows = duckdb.sql(f"SELECT id, map_from_entries(metadata.entries) AS meta, models[1].backend AS backend "
                      f"FROM read_parquet('{folder}') ORDER BY id").fetchall()
    assert [row[0] for row in rows] == IDS
    assert rows[0][1]["page_type"] == "article" and rows[0][1]["n"] == "3" and rows[0][2] == "heuristic"


def test_datatrove_parquet_reader_reads_the_folder(folder):
    from datatrove.pipeline.readers import ParquetReader

    documents = list(ParquetReader(str(folder)).run())
    assert sorted(doc.id for doc in documents) == IDS
    for doc in documents:
        # datatrove folds the `metadata` struct's fields and every other column into Document.metadata
        assert_nested_row({"id": doc.id, "text": doc.text, "models": doc.metadata["models"],
                           "report_errors": doc.metadata["report_errors"],
                           "metadata": {"entries": doc.metadata["entries"], "json": doc.metadata["json"]}})
