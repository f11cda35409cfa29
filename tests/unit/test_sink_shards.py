"""The sink's shard writer, storage, manifest and recovery, without a broker."""
from __future__ import annotations

import gzip
import json
import os

import pyarrow.parquet as pq
import pytest

from prox.sink.manifest import Manifest, ManifestEntry
from prox.sink.rows import COLUMNS, to_row
from prox.sink.settings import ShardSettings, SinkSettings
from prox.sink.shards import ShardWriter
from prox.sink.storage import LEGACY_MANIFEST, MANIFEST, LayoutConflict, Storage, sha256_file
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


def test_row_has_the_trainer_columns_with_nested_metadata_models_and_errors():
    row = to_row(make_doc(3))
    assert tuple(row) == COLUMNS
    assert row["metadata"]["entries"] == [{"key": "page_type", "value": "article"}, {"key": "n", "value": "3"}]
    assert json.loads(row["metadata"]["json"]) == {"page_type": "article", "n": 3}
    assert row["report_outcome"] == "edited" and row["report_words_out"] == 5
    assert row["report_errors"] == [{"statement": "bad()", "reason": "unknown call", "level": "chunk"}]
    assert row["models"][1] == {"name": "prox_chunk", "version": "v2", "backend": "heuristic"}
    assert (row["doc_model"], row["doc_model_version"], row["chunk_model_version"]) == ("prox_doc", "v1", "v2")
    dropped = to_row(make_doc(4, text=None, dropped=True, report=None, models=[], metadata=None))
    assert dropped["text"] is None and dropped["report_outcome"] is None and dropped["doc_model"] is None
    assert dropped["metadata"] == {"entries": [], "json": None} and dropped["report_errors"] is None


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
    assert storage.listing() == [finished.name]  # the manifest lives in the state folder
    assert (tmp_path / "out.state" / MANIFEST).exists()
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
    with open(storage.state_root / MANIFEST, "ab") as handle:
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
    assert fs.ls("/prox-sink-test/shards", detail=False) == [f"/prox-sink-test/shards/{finished.name}"]
    assert fs.exists(f"/prox-sink-test/shards.state/{MANIFEST}")
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


# --- the state folder: manifest and staging beside the data folder, never in it ------------------

def test_manifest_and_staging_live_in_the_state_folder_beside_the_data_folder(tmp_path):
    storage = Storage(str(tmp_path / "shards"), "w1")
    writer = ShardWriter(storage, "refined")
    writer.add(to_row(make_doc(1)), "doc-1", 10, ("t", 0), 0)
    finished = writer.finish()
    assert finished.temp.parent == tmp_path / "shards.state" / "tmp" / "w1"
    Manifest(storage).append(finished.entry)
    storage.publish(finished.temp, finished.name)
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [finished.name]
    assert [e.file for e in Manifest(Storage(str(tmp_path / "shards"), "reader")).entries()] == [finished.name]


def test_the_state_folder_follows_the_settings_and_the_dropped_shards_get_their_own(tmp_path):
    default = SinkSettings(sink=ShardSettings(path=str(tmp_path / "shards") + "/"))
    assert (default.state_path(), default.dropped_state_path()) == (
        str(tmp_path / "shards.state"), str(tmp_path / "shards-dropped.state"))
    chosen = SinkSettings(sink=ShardSettings(path=str(tmp_path / "shards"), state_path=str(tmp_path / "st")))
    assert (chosen.state_path(), chosen.dropped_state_path()) == (str(tmp_path / "st"), str(tmp_path / "st-dropped"))
    on_s3 = SinkSettings(sink=ShardSettings(path="s3://bucket/prox/shards"))
    assert on_s3.state_path() == "s3://bucket/prox/shards.state"
    with pytest.raises(ValueError, match="state_path"):
        SinkSettings(sink=ShardSettings(path="s3://bucket")).state_path()  # no folder beside a bucket


def test_a_state_folder_inside_the_data_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        Storage(str(tmp_path / "shards"), "w", state_url=str(tmp_path / "shards" / "state"))


def _old_layout(tmp_path):
    """What an earlier version left: PATH/_manifest.jsonl, a published shard, a listed shard whose rename a
    crash interrupted (its temp file in PATH/.tmp/WRITER/) and an unlisted temp file of the same writer."""
    path = tmp_path / "shards"
    scratch = Storage(str(tmp_path / "scratch"), "w1")
    writer = ShardWriter(scratch, "refined")
    shards = []
    for i in range(3):
        writer.add(to_row(make_doc(i)), f"doc-{i}", 10, ("t", 0), i)
        shards.append(writer.finish())
    (path / ".tmp" / "w1").mkdir(parents=True)
    published, listed, unlisted = shards
    os.replace(published.temp, path / published.name)
    os.replace(listed.temp, path / ".tmp" / "w1" / (listed.name + ".tmp"))
    os.replace(unlisted.temp, path / ".tmp" / "w1" / (unlisted.name + ".tmp"))
    (path / LEGACY_MANIFEST).write_bytes(published.entry.line() + listed.entry.line())
    return path, published, listed, unlisted


def test_a_sink_started_on_the_old_layout_moves_its_manifest_and_temp_files_into_the_state_folder(tmp_path):
    path, published, listed, unlisted = _old_layout(tmp_path)
    old_manifest = (path / LEGACY_MANIFEST).read_bytes()
    storage = Storage(str(path), "w1")

    counts = Manifest(storage).recover()

    assert (tmp_path / "shards.state" / MANIFEST).read_bytes() == old_manifest  # moved, not rewritten
    assert counts == {"rolled_forward": 1, "discarded": 1}  # the interrupted rename finished, as before
    assert sorted(p.name for p in path.iterdir()) == sorted([published.name, listed.name])
    assert check(storage, Manifest(storage).entries()) == []
    assert Manifest(storage).recover() == {"rolled_forward": 0, "discarded": 0}  # a second start: nothing to do


def test_an_old_manifest_that_disagrees_with_the_state_folders_stops_the_start_and_keeps_both(tmp_path):
    path, published, _, _ = _old_layout(tmp_path)
    state = tmp_path / "shards.state"
    state.mkdir()
    (state / MANIFEST).write_bytes(published.entry.line())
    old = (path / LEGACY_MANIFEST).read_bytes()
    with pytest.raises(LayoutConflict, match=LEGACY_MANIFEST):
        Manifest(Storage(str(path), "w1")).recover()
    assert (path / LEGACY_MANIFEST).read_bytes() == old and (state / MANIFEST).read_bytes() == published.entry.line()


def test_an_old_manifest_on_an_object_store_moves_to_the_state_prefix(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    line = ManifestEntry(file="a.parquet", kind="refined", format="parquet", rows=1, bytes=1, sha256="x").line()
    fs.pipe_file("/prox-sink-legacy/shards/" + LEGACY_MANIFEST, line)
    storage = Storage("memory://prox-sink-legacy/shards", "w", staging_dir=str(tmp_path))
    Manifest(storage).recover()
    assert not fs.exists("/prox-sink-legacy/shards/" + LEGACY_MANIFEST)
    assert fs.cat_file(f"/prox-sink-legacy/shards.state/{MANIFEST}") == line
