"""`prox local` end to end, as a user runs it: real pages, every document accounted for, a child killed."""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.paths import SAMPLE

pytestmark = pytest.mark.integration

PROX = [sys.executable, "-m", "prox.cli.main"]


def write_input(path: Path, count: int, extra_lines: list[str] = ()) -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        pages = [json.loads(line) for _, line in zip(range(count), handle)]
    with open(path, "w", encoding="utf-8") as out:
        for page in pages:
            out.write(json.dumps(page, ensure_ascii=False) + "\n")
        for line in extra_lines:
            out.write(line + "\n")
    return pages


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def local_command(tmp_path: Path, input_path: Path) -> list[str]:
    return PROX + ["local", "--input", str(input_path), "--output", str(tmp_path / "refined.jsonl"),
                   "--dropped", str(tmp_path / "dropped.jsonl"), "--dlq", str(tmp_path / "dlq.jsonl"),
                   "--workdir", str(tmp_path / "work")]


def test_prox_local_accounts_for_every_document_and_matches_prox_execute(tmp_path):
    lone_surrogate = {"id": "lone-surrogate", "text": "A crawl dump line with a lone surrogate \ud800 in it.\n" * 8}
    pages = write_input(tmp_path / "in.jsonl", 60, ["{broken json", json.dumps({"id": "no-text"}),
                                                    json.dumps(lone_surrogate)])  # json writes "\ud800"
    result = subprocess.run(local_command(tmp_path, tmp_path / "in.jsonl"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["documents_in"] == 61 and summary["malformed_input"] == 2 and summary["accounted"]
    assert summary["repaired_input"] == 1
    assert "skipped malformed input" in result.stderr
    assert "in.jsonl:63: repaired: 8 character(s) with no UTF-8 form replaced by U+FFFD" in result.stderr
    pages.append({**lone_surrogate, "text": lone_surrogate["text"].replace("\ud800", "\ufffd")})

    refined, dropped = read_jsonl(tmp_path / "refined.jsonl"), read_jsonl(tmp_path / "dropped.jsonl")
    out_ids = [m["id"] for m in refined + dropped + read_jsonl(tmp_path / "dlq.jsonl")]
    assert sorted(out_ids) == sorted(p["id"] for p in pages)  # each id exactly once
    assert summary["refined"] == len(refined) and summary["dropped"] == len(dropped)

    import pyarrow.dataset

    shards = pyarrow.dataset.dataset(tmp_path / "shards", format="parquet").to_table(columns=["id", "text"])
    assert sorted(shards.column("id").to_pylist()) == sorted(m["id"] for m in refined)  # each refined id once
    assert dict(zip(shards.column("id").to_pylist(), shards.column("text").to_pylist())) == {
        m["id"]: m["text"] for m in refined}
    assert summary["shard_rows"] == len(refined) and summary["shards"] == str(tmp_path / "shards")

    texts = {p["id"]: p["text"] for p in pages}
    replay = tmp_path / "programs.jsonl"
    with open(replay, "w", encoding="utf-8") as out:
        for message in refined + dropped:
            out.write(json.dumps({"id": message["id"], "text": texts[message["id"]], "keep_prob": message["keep_prob"],
                                  "doc_program": message["doc_program"], "chunk_program": message["chunk_program"]}) + "\n")
    subprocess.run(PROX + ["execute", "--input", str(replay), "--output", str(tmp_path / "replayed.jsonl")],
                   check=True, timeout=120)
    offline = {m["id"]: (m["text"], m["dropped"]) for m in read_jsonl(tmp_path / "replayed.jsonl")}
    assert {m["id"]: (m["text"], m["dropped"]) for m in refined + dropped} == offline


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _find_child(pid: int, words: str, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in _child_pids(pid):
            try:
                if words in Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return child
            except FileNotFoundError:
                continue
        time.sleep(0.2)
    raise AssertionError(f"no child running {words!r}")


def _wait_for_lines(path: Path, count: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and sum(1 for _ in open(path, encoding="utf-8")) >= count:
            return
        time.sleep(0.1)


def test_prox_local_survives_a_child_killed_mid_run(tmp_path):
    pages = write_input(tmp_path / "in.jsonl", 300)
    process = subprocess.Popen(local_command(tmp_path, tmp_path / "in.jsonl"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PROX_BATCH_SIZE": "8"})
    victim = _find_child(process.pid, "service chunk-refiner")
    _wait_for_lines(tmp_path / "refined.jsonl", 5)
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "chunk-refiner exited with code -9; restarting" in stderr
    out_ids = {m["id"] for name in ("refined", "dropped", "dlq") for m in read_jsonl(tmp_path / f"{name}.jsonl")}
    assert out_ids == {p["id"] for p in pages}


def _processes_with(marker: str) -> list[str]:
    """Command lines of the live processes whose environment holds `marker` (what one command started)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append((environ.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_prox_local_stopped_by_a_signal_leaves_nothing_running(tmp_path, sig):
    write_input(tmp_path / "in.jsonl", 10)
    marker = f"PROX_TEST_RUN={uuid.uuid4().hex}"
    process = subprocess.Popen(local_command(tmp_path, tmp_path / "in.jsonl") + ["--keep-running"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, marker.split("=")[0]: marker.split("=")[1]})
    for line in process.stderr:  # until the run is done and the stack stays up
        if "stack running" in line:
            break
    assert len(_processes_with(marker)) >= 6  # prox local, broker, model server, tritonserver, 3 services
    process.send_signal(sig)
    process.wait(timeout=120)
    if sig == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM
        assert "SIGTERM received; stack stopped" in process.stderr.read()
    deadline = time.monotonic() + 60
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == []


def test_prox_local_refuses_to_replace_a_shards_folder_holding_a_users_file(tmp_path):
    write_input(tmp_path / "in.jsonl", 3)
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "notes.txt").write_text("the user's own file")
    started = time.monotonic()
    result = subprocess.run(local_command(tmp_path, tmp_path / "in.jsonl"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert time.monotonic() - started < 30  # refused up front: no broker, no model server, no services
    assert "notes.txt" in result.stderr and "starting broker" not in result.stderr, result.stderr[-2000:]
    assert (tmp_path / "shards" / "notes.txt").read_text() == "the user's own file"
    assert not (tmp_path / "refined.jsonl").exists() and not (tmp_path / "work").exists()


def test_prox_local_replaces_its_own_earlier_outputs(tmp_path):
    pages = write_input(tmp_path / "in.jsonl", 4)
    for run in range(2):  # the second run finds the first one's files, shards and state folder
        result = subprocess.run(local_command(tmp_path, tmp_path / "in.jsonl"), capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, f"run {run}: {result.stderr[-3000:]}"
    import pyarrow.parquet as pq

    refined = read_jsonl(tmp_path / "refined.jsonl")
    out_ids = [m["id"] for m in refined + read_jsonl(tmp_path / "dropped.jsonl")]
    assert sorted(out_ids) == sorted(p["id"] for p in pages)
    assert sorted(pq.read_table(tmp_path / "shards").column("id").to_pylist()) == sorted(m["id"] for m in refined)
    assert (tmp_path / "shards.state" / "manifest.jsonl").exists()
