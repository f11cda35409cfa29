"""What `prox local` may replace before a run: only an earlier run's outputs, checked without a broker."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from prox.cli.outputs import OutputInUse, prepare_outputs
from prox.sink.manifest import Manifest
from prox.sink.rows import to_row
from prox.sink.shards import ShardWriter
from prox.sink.storage import LEGACY_MANIFEST, Storage
from prox_proto import DeadLetter, encode_json
from tests.unit.test_sink_shards import make_doc


def earlier_run_shards(path: Path, shards: int = 2) -> list[str]:
    """What a run's sink leaves: published shards, the manifest and an open shard's staging file."""
    storage = Storage(str(path), "local")
    writer = ShardWriter(storage, "refined")
    names = []
    for i in range(shards):
        writer.add(to_row(make_doc(i)), f"doc-{i}", 10, ("prox.refined", 0), i)
        finished = writer.finish()
        Manifest(storage).append(finished.entry)
        storage.publish(finished.temp, finished.name)
        names.append(finished.name)
    writer.add(to_row(make_doc(99)), "doc-99", 10, ("prox.refined", 0), 99)  # open when the run stopped
    return names


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file())


def refined_lines(count: int) -> bytes:
    return b"".join(encode_json(make_doc(i)) + b"\n" for i in range(count))


def dead_letter_line() -> bytes:
    letter = DeadLetter(reason="invalid_message", error_class="DecodeError", error="bad", source_topic="prox.raw",
                        partition=0, offset=3, payload="{oops", service="doc-refiner")
    return encode_json(letter) + b"\n"


# --- the shards folder ------------------------------------------------------------------------

def test_a_user_file_in_an_existing_shards_folder_survives_and_the_run_is_refused(tmp_path):
    shards = tmp_path / "shards"
    earlier_run_shards(shards)
    (shards / "notes.txt").write_text("mine")
    before = files_under(shards, tmp_path / "shards.state")
    with pytest.raises(OutputInUse, match="notes.txt") as refused:
        prepare_outputs({}, shards)
    assert "\n" not in str(refused.value) and "--shards" in str(refused.value)
    assert files_under(shards, tmp_path / "shards.state") == before
    assert (shards / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("intruder", ["shards/data.parquet", "shards/sub/x.parquet", "shards.state/keep.json",
                                      "shards.state/tmp/w/readme.md", "shards-dropped/mine.csv"])
def test_anything_the_sink_did_not_write_stops_the_run(tmp_path, intruder):
    earlier_run_shards(tmp_path / "shards")
    (tmp_path / intruder).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / intruder).write_text("user data")
    with pytest.raises(OutputInUse):
        prepare_outputs({}, tmp_path / "shards")
    assert (tmp_path / intruder).read_text() == "user data"


def test_a_listed_shard_whose_size_changed_is_not_ours_any_more(tmp_path):
    name = earlier_run_shards(tmp_path / "shards")[0]
    with open(tmp_path / "shards" / name, "ab") as handle:
        handle.write(b"edited")
    with pytest.raises(OutputInUse, match=name):
        prepare_outputs({}, tmp_path / "shards")


def test_an_earlier_runs_shards_state_and_dropped_shards_are_replaced(tmp_path):
    earlier_run_shards(tmp_path / "shards")
    earlier_run_shards(tmp_path / "shards-dropped", shards=1)  # a run with PROX_SINK_INCLUDE_DROPPED=true
    prepare_outputs({}, tmp_path / "shards")
    assert files_under(tmp_path) == []


def test_an_earlier_versions_layout_is_replaced_too(tmp_path):
    """Shards with `_manifest.jsonl` and `.tmp/` inside the folder, as runs before the state folder left them."""
    shards = tmp_path / "shards"
    names = earlier_run_shards(shards)
    state = tmp_path / "shards.state"
    os.replace(state / "manifest.jsonl", shards / LEGACY_MANIFEST)
    os.replace(state / "tmp", shards / ".tmp")
    state.rmdir()
    assert {p.name for p in files_under(shards)} > set(names)
    prepare_outputs({}, shards)
    assert files_under(tmp_path) == []


def test_a_file_where_the_shards_folder_goes_is_refused(tmp_path):
    (tmp_path / "shards").write_text("not a folder")
    with pytest.raises(OutputInUse, match="not a folder"):
        prepare_outputs({}, tmp_path / "shards")


# --- output files -----------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b'{"id": "a", "text": "my own document"}\n', b"hello\n", b"id,text\n1,x\n"])
def test_a_non_prox_output_file_is_refused_and_kept(tmp_path, content):
    output = tmp_path / "refined.jsonl"
    output.write_bytes(content)
    with pytest.raises(OutputInUse, match="--output"):
        prepare_outputs({"--output": output}, None)
    assert output.read_bytes() == content


@pytest.mark.parametrize("name,content", [
    ("refined.jsonl", refined_lines(3)),
    ("refined.jsonl", b""),
    ("refined.jsonl", refined_lines(2) + encode_json(make_doc(5))[:40]),  # a run killed mid-line
    ("dlq.jsonl", dead_letter_line() * 2),
    ("refined.jsonl.gz", gzip.compress(refined_lines(3))),
    ("refined.jsonl.gz", gzip.compress(refined_lines(3))[:-30]),  # a run killed mid-stream
])
def test_an_earlier_runs_output_file_may_be_replaced(tmp_path, name, content):
    output = tmp_path / name
    output.write_bytes(content)
    prepare_outputs({"--output": output}, None)  # the collector then writes it afresh


def test_an_output_path_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "dlq.jsonl").mkdir()
    with pytest.raises(OutputInUse, match="--dlq"):
        prepare_outputs({"--dlq": tmp_path / "dlq.jsonl"}, None)


def test_nothing_is_removed_when_any_output_is_refused(tmp_path):
    names = earlier_run_shards(tmp_path / "shards")
    (tmp_path / "dlq.jsonl").write_text("my notes\n")
    with pytest.raises(OutputInUse, match="--dlq"):
        prepare_outputs({"--output": tmp_path / "refined.jsonl", "--dlq": tmp_path / "dlq.jsonl"}, tmp_path / "shards")
    assert {p.name for p in files_under(tmp_path / "shards")} == set(names)
