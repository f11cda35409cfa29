"""The sink's shard writer, storage, manifest and recovery, without a broker."""
from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from prox.sink.manifest import Manifest, ManifestEntry
from prox.sink.rows import COLUMNS, to_row
from prox.sink.shards import ShardWriter
from prox.sink.storage import MANIFEST, Storage, sha256_file
from prox.sink.verify import check, read_rows
from prox_proto import ExecutionReport, ModelInfo, ProgramError, RefinedDocument


def make_doc(i: int, **changes) -> RefinedDocument:
    values = dict(
        id=f"doc-{i}", text=f"line one of {i}\nline two é ✓", dropped=False, url=f"https://example.org/{i}",
        source="test", metadata={"page_type": "article", "n": i}, ingest_time=1_700_000_000.5 + i,
        doc_program="keep_doc()", chunk_program="remove_lines(0, 1)", keep_prob=0.75,
        report=ExecutionReport(outcome="edited", calls_applied=1, lines_removed=1, words_in=9, words_out=5,
                               errors=[ProgramError("bad()", "unknown call")]),
        models=[ModelInfo(name="prox_doc", version="v1", backend="heuristic"),
                ModelInfo(name="prox_chunk", version="v2", backend="heuristic")],
    )
    values.update(changes)
    return RefinedDocument(**values)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_row_has_the_trainer_columns_with_metadata_as_json():
    row = to_row(make_doc(3))
    assert tuple(row) == COLUMNS
    assert json.loads(row["metadata"]) == {"page_type": "article", "n": 3}
    assert row["report_outcome"] == "edited" and row["report_words_out"] == 5
    assert json.loads(row["report_errors"]) == [{"statement": "bad()", "reason": "unknown call"}]
    assert (row["doc_model"], row["doc_model_version"], row["chunk_model_version"]) == ("prox_doc", "v1", "v2")
    dropped = to_row(make_doc(4, text=None, dropped=True, report=None, models=[]))
    assert dropped["text"] is None and dropped["report_outcome"] is None and dropped["doc_model"] is None


@pytest.mark.parametrize("fmt", ["parquet", "jsonl.gz"])
def test_shard_is_hidden_until_published_and_reads_back_equal(tmp_path, fmt):
    storage = Storage(str(tmp_path / "out"), "w1")
    writer = ShardWriter(storage, "refined", format=fmt, row_group_rows=3, max_bytes=10**9, max_age_s=60)
    rows = [to_row(make_doc(i)) for i in range(10)]
    for i, row in enumerate(rows):
        writer.add(row, row["id"], 100, ("prox.refined", i % 2), 50 + i, ack=i)
    assert storage.listing() == []  # only the hidden temp file exists so far
    finished = writer.finish()
    assert finished.temp.exists() and finished.entry.rows == 10 and finished.acks == list(range(10))
    assert finished.entry.sha256 == sha256_file(finished.temp)
    assert [(r.partition, r.first, r.last) for r in finished.entry.offsets] == [(0, 50, 58), (1, 51, 59)]
    Manifest(storage).append(finished.entry)
    storage.publish(finished.temp, finished.name)
    assert storage.listing() == sorted([MANIFEST, finished.name])
    assert not finished.temp.exists()
    entries = Manifest(storage).entries()
    assert check(storage, entries) == []
    assert read_rows(storage, entries[0]) == rows
    if fmt == "parquet":
        table = pq.read_table(tmp_path / "out" / finished.name)
        assert table.schema.names == list(COLUMNS)
        assert pq.ParquetFile(tmp_path / "out" / finished.name).metadata.row_group(0).column(0).compression == "ZSTD"
    else:
        lines = gzip.decompress((tmp_path / "out" / finished.name).read_bytes()).decode().splitlines()
        assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in rows]


def test_shard_closes_at_its_size_or_its_age():
    clock = Clock()
    import tempfile

    storage = Storage(tempfile.mkdtemp(), "w")
    writer = ShardWriter(storage, "refined", max_bytes=1000, max_age_s=30, clock=clock)
    assert not writer.should_close()  # no open shard
    writer.add(to_row(make_doc(1)), "doc-1", 400, ("t", 0), 0)
    assert not writer.should_close()
    clock.now = 30
    assert writer.should_close()  # age
    writer.finish()
    writer.add(to_row(make_doc(2)), "doc-2", 600, ("t", 0), 1)
    writer.add(to_row(make_doc(3)), "doc-3", 400, ("t", 0), 2)
    assert writer.should_close()  # size


def test_manifest_skips_a_torn_last_line_and_terminates_it_before_appending(tmp_path):
    storage = Storage(str(tmp_path), "w")
    manifest = Manifest(storage)
    first = ManifestEntry(file="a.parquet", kind="refined", format="parquet", rows=1, bytes=1, sha256="x")
    manifest.append(first)
    with open(tmp_path / MANIFEST, "ab") as handle:
        handle.write(b'{"file": "torn.parq')  # a crash mid-append
    assert [e.file for e in manifest.entries()] == ["a.parquet"]
    second = ManifestEntry(file="b.parquet", kind="refined", format="parquet", rows=2, bytes=2, sha256="y")
    manifest.append(second)
    assert [e.file for e in manifest.entries()] == ["a.parquet", "b.parquet"]


def test_recover_rolls_listed_temp_files_forward_and_discards_own_unlisted_ones(tmp_path):
    storage = Storage(str(tmp_path), "w1")
    writer = ShardWriter(storage, "refined")
    writer.add(to_row(make_doc(1)), "doc-1", 10, ("t", 0), 0)
    listed = writer.finish()
    Manifest(storage).append(listed.entry)  # crash here: listed, not yet renamed
    writer.add(to_row(make_doc(2)), "doc-2", 10, ("t", 0), 1)
    unlisted = writer.finish()  # crash here: fsync'd, never listed
    other = Storage(str(tmp_path), "w2")
    other_writer = ShardWriter(other, "refined")
    other_writer.add(to_row(make_doc(3)), "doc-3", 10, ("t", 0), 2)
    others = other_writer.finish()  # another live writer's open shard: not ours to delete

    counts = Manifest(storage).recover()

    assert counts == {"rolled_forward": 1, "discarded": 1}
    assert storage.exists(listed.name) and not listed.temp.exists()
    assert not unlisted.temp.exists() and not storage.exists(unlisted.name)
    assert others.temp.exists()
    assert check(storage, Manifest(storage).entries()) == []


def test_fsspec_url_publishes_by_upload(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    storage = Storage("memory://prox-sink-test/shards", "w", staging_dir=str(tmp_path / "staging"))
    writer = ShardWriter(storage, "refined")
    rows = [to_row(make_doc(i)) for i in range(3)]
    for i, row in enumerate(rows):
        writer.add(row, row["id"], 10, ("t", 0), i)
    finished = writer.finish()
    assert finished.temp.parent.parent.parent == tmp_path / "staging"
    Manifest(storage).append(finished.entry)
    storage.publish(finished.temp, finished.name)
    fs = fsspec.filesystem("memory")
    assert fs.exists(f"/prox-sink-test/shards/{finished.name}")
    entries = Manifest(storage).entries()
    assert check(storage, entries) == [] and read_rows(storage, entries[0]) == rows


def test_recover_deletes_another_writers_temp_file_only_once_it_is_stale(tmp_path):
    import os

    mine = Storage(str(tmp_path), "new-pod")
    old = Storage(str(tmp_path), "old-pod")
    writer = ShardWriter(old, "refined")
    writer.add(to_row(make_doc(1)), "doc-1", 10, ("t", 0), 0)
    abandoned = writer.finish()
    assert Manifest(mine).recover(stale_after_s=900) == {"rolled_forward": 0, "discarded": 0}
    os.utime(abandoned.temp, (0, 0))  # untouched for ages: its pod is gone
    assert Manifest(mine).recover(stale_after_s=900) == {"rolled_forward": 0, "discarded": 1}
    assert not abandoned.temp.exists()
