"""`prox execute`: streaming JSONL in and out, plain or gzip, malformed lines reported and skipped."""
import gzip
import json

import pytest

from prox.cli.main import main
from prox.executor import execute_document
from prox_proto.messages import document_id

TEXT = "\n".join(f"line {i} of a page with enough words to keep it" for i in range(4))


def write_jsonl(path, rows):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")


def read_jsonl(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("suffix_in, suffix_out", [(".jsonl", ".jsonl"), (".jsonl.gz", ".jsonl.gz"), (".jsonl", ".jsonl.gz")])
def test_execute_file(tmp_path, suffix_in, suffix_out):
    rows = [
        {"id": "a", "text": TEXT, "doc_program": "keep_doc()", "chunk_program": "remove_lines(0, 0)", "url": "u"},
        {"id": "b", "text": TEXT, "doc_program": "drop_doc()"},
        {"text": TEXT, "chunk_program": None, "keep_prob": 0.9},
    ]
    source, target = tmp_path / f"in{suffix_in}", tmp_path / f"out{suffix_out}"
    write_jsonl(source, rows)
    assert main(["execute", "--input", str(source), "--output", str(target)]) == 0
    out = read_jsonl(target)
    assert [row["id"] for row in out] == ["a", "b", document_id(TEXT)]
    expected = execute_document(TEXT, "keep_doc()", "remove_lines(0, 0)")
    assert out[0]["text"] == expected.text and out[0]["url"] == "u" and out[0]["report"]["lines_removed"] == 1
    assert out[1]["text"] is None and out[1]["dropped"] and out[1]["report"]["drop_reason"] == "doc_program"
    assert out[2]["text"] == TEXT and out[2]["report"]["outcome"] == "kept"


def test_malformed_lines_are_reported_skipped_and_fail_the_run(tmp_path, capsys):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"id": "1", "text": TEXT}, "not json", {"id": "x"}, [1, 2], {"text": 5},
                         {"text": TEXT, "chunk_program": 3}, {"id": "2", "text": TEXT}])
    assert main(["execute", "--input", str(source), "--output", str(target)]) == 1
    assert [row["id"] for row in read_jsonl(target)] == ["1", "2"]
    stderr = capsys.readouterr().err
    for number in (2, 3, 4, 5, 6):
        assert f"line {number}:" in stderr
    assert "line 1:" not in stderr and "line 7:" not in stderr


def test_options_reach_the_executor(tmp_path):
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [
        {"id": "p", "text": TEXT, "doc_program": "keep_doc()", "keep_prob": 0.2},
        {"id": "g", "text": TEXT, "chunk_program": 'normalize("line", "a longer line")'},
        {"id": "s", "text": "one two three"},
    ])
    args = ["execute", "--input", str(source), "--output", str(target), "--keep-threshold", "0.5",
            "--max-growth", "1.0", "--max-errors", "1", "--min-words", "3"]
    assert main(args) == 0
    by_id = {row["id"]: row for row in read_jsonl(target)}
    assert by_id["p"]["dropped"]
    assert by_id["g"]["report"]["program_ignored"] and by_id["g"]["text"] == TEXT
    assert not by_id["s"]["dropped"]


def test_missing_input_file_is_an_error(tmp_path):
    assert main(["execute", "--input", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "o.jsonl")]) == 2


def test_execute_streams_without_reading_the_whole_input():
    """Output for a line is written before the next line is read (constant memory)."""
    import io

    from prox.executor.stream import execute_lines

    output = io.BytesIO()
    written_before_each_read = []

    def lines():
        for row in ({"text": TEXT}, {"text": TEXT}, {"text": TEXT}):
            written_before_each_read.append(output.getvalue().count(b"\n"))
            yield json.dumps(row).encode()

    stats = execute_lines(lines(), output)
    assert written_before_each_read == [0, 1, 2] and stats.written == 3


def test_label_programs_keep_exactly_the_labelled_lines(shared_data):
    """On real pages, a program removing every 0-labelled line leaves exactly the 1-labelled lines."""
    from itertools import islice

    from prox.executor import ExecutorOptions

    with gzip.open(shared_data / "wcxb-dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        pages = [json.loads(line) for line in islice(handle, 200)]
    options = ExecutorOptions(min_words=0, min_keep_ratio=-1.0)
    for page in pages:
        lines, labels = page["text"].split("\n"), page["line_labels"]
        program = "\n".join(f"remove_lines({i}, {i})" for i, label in enumerate(labels) if label == 0)
        execution = execute_document(page["text"], "keep_doc()", program, options=options)
        assert execution.text == "\n".join(line for line, label in zip(lines, labels) if label == 1), page["id"]
        assert execution.report.errors == []
