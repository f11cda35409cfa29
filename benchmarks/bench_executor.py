"""Benchmark of the executor: `prox execute` throughput on real web pages, against plain JSONL I/O.

Programs come from the WCXB labels: each run of 0-labelled lines becomes `remove_lines(a, b)`, plus
`normalize` calls that are safe (typographic quotes, stray spaces and HTML entities, when the page has them).
In the same run it measures the baseline (decoding and re-encoding the same JSONL, nothing executed),
the executor alone in memory, and the 1 MB document with 1,000 `remove_lines` + 20 `normalize` calls.

    python benchmarks/bench_executor.py [--data PATH] [--limit N] [--repeat R]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from prox.executor import execute_document
from prox.executor.stream import execute_file, open_binary

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "wcxb-dev.jsonl.gz"
RESULTS = REPO / "benchmarks" / "results"
# Typographic clean-ups that cannot change meaning; applied only when the page has the source.
SAFE_NORMALIZATIONS = (("\u2019", "'"), ("\u201c", '"'), (" ,", ","), ("&nbsp;", " "), ("&amp;", "&"))


def removal_runs(labels: list[int]) -> list[tuple[int, int]]:
    runs, start = [], None
    for index, label in enumerate(labels + [1]):
        if label == 0 and start is None:
            start = index
        elif label != 0 and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def chunk_program(text: str, labels: list[int]) -> str:
    calls = [f"remove_lines({start}, {end})" for start, end in removal_runs(labels)]
    calls += [f"normalize({source!r}, {target!r})" for source, target in SAFE_NORMALIZATIONS if source in text]
    return "\n".join(calls)


def write_input(data: Path, limit: int | None, path: Path) -> tuple[int, int]:
    """Write the benchmark's `prox execute` input; returns (documents, calls)."""
    documents = calls = 0
    with gzip.open(data, "rt", encoding="utf-8") as source, open(path, "wb") as sink:
        for line in source:
            if limit is not None and documents >= limit:
                break
            page = json.loads(line)
            program = chunk_program(page["text"], list(page["line_labels"]))
            calls += program.count("\n") + 1 if program else 0
            record = {"id": page["id"], "text": page["text"], "doc_program": "keep_doc()", "chunk_program": program}
            sink.write(msgspec.json.encode(record) + b"\n")
            documents += 1
    return documents, calls


def copy_jsonl(input_path: str, output_path: str) -> None:
    """The baseline: read, decode, re-encode and write every line, executing nothing."""
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
    with open_binary(input_path, "rb") as source, open_binary(output_path, "wb") as sink:
        for line in source:
            sink.write(encoder.encode(decoder.decode(line)) + b"\n")


def best_of(repeat: int, function, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def execute_in_memory(records: list[dict]) -> None:
    for record in records:
        execute_document(record["text"], record["doc_program"], record["chunk_program"])


def megabyte_case(repeat: int) -> dict:
    line = "a line of ordinary prose with a few words, numbered {} for the benchmark document."
    text = "\n".join(line.format(i) for i in range(13_000))[:1_000_000]
    program = "\n".join(f"remove_lines({i * 10}, {i * 10 + 4})" for i in range(1000))
    program += "\n" + "\n".join(f'normalize("numbered {i}", "no. {i}")' for i in range(20))
    execution = execute_document(text, "keep_doc()", program)
    assert not execution.report.errors and execution.report.calls_applied == 1021, execution.report
    seconds = best_of(repeat, execute_document, text, "keep_doc()", program)
    return {"document_chars": len(text), "remove_lines_calls": 1000, "normalize_calls": 20, "ms": round(seconds * 1000, 2)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def markdown(result: dict) -> str:
    wcxb, mb = result["wcxb"], result["megabyte_document"]
    return "\n".join([
        "# Executor benchmark", "",
        f"Machine: {result['machine']['cpu']}, nproc {result['machine']['nproc']}, Python {result['machine']['python']}; "
        f"load average {result['machine']['load_average_1m']} at the end (a shared machine: timings are noisy); "
        f"best of {result['repeat']} runs, one core.", "",
        f"WCXB dev pages: {wcxb['documents']} documents, {wcxb['calls_per_document']} calls per document "
        "(programs from `line_labels`).", "",
        "| measurement | documents/s | ratio to baseline time |",
        "|---|---|---|",
        f"| baseline: read + decode + encode + write JSONL | {wcxb['baseline_docs_per_s']:,} | 1.00 |",
        f"| `prox execute` (streaming, same files) | {wcxb['execute_docs_per_s']:,} | {wcxb['execute_time_ratio']:.2f} |",
        f"| executor only, in memory (`execute_document`) | {wcxb['in_memory_docs_per_s']:,} | {wcxb['in_memory_time_ratio']:.2f} |",
        "",
        f"1 MB document ({mb['document_chars']:,} characters), {mb['remove_lines_calls']} `remove_lines` + "
        f"{mb['normalize_calls']} `normalize`: **{mb['ms']} ms**.", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        input_path, output_path = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
        documents, calls = write_input(args.data, args.limit, input_path)
        records = [msgspec.json.decode(line) for line in input_path.read_bytes().splitlines()]
        baseline = best_of(args.repeat, copy_jsonl, str(input_path), str(output_path))
        executed = best_of(args.repeat, execute_file, str(input_path), str(output_path))
        in_memory = best_of(args.repeat, execute_in_memory, records)
    result = {
        "repeat": args.repeat,
        "wcxb": {
            "documents": documents,
            "calls_per_document": round(calls / documents, 2),
            "baseline_docs_per_s": round(documents / baseline),
            "execute_docs_per_s": round(documents / executed),
            "in_memory_docs_per_s": round(documents / in_memory),
            "execute_time_ratio": round(executed / baseline, 3),
            "in_memory_time_ratio": round(in_memory / baseline, 3),
        },
        "megabyte_document": megabyte_case(args.repeat),
    }
    result["machine"] = machine()  # load average after the measurements
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "executor.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results / "executor.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
