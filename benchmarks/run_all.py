"""`make bench`: every benchmark, one after the other, then the headline numbers in benchmarks/results/README.md.

Each benchmark runs in its own process (they start brokers, model servers and torch). A failure is
reported and the rest still run; the exit code is non-zero when any failed. About 10 minutes on 2 cores.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# The labelled WCXB dev set (line_labels, gold); the bundled sample has no labels.
LABELLED_DATA = HERE.parent.parent / "shared" / "data" / "wcxb-dev.jsonl.gz"
NEEDS_LABELS = {"bench_executor.py", "bench_heuristic.py"}
BENCHMARKS = (
    ("executor", ["bench_executor.py"]),
    ("heuristic writers", ["bench_heuristic.py"]),
    ("model, in-process (released shape, CPU, tiny settings)", ["bench_model.py"]),
    ("model, via Triton vs in-process (tiny shape, CPU)", ["bench_model.py", "--via-triton"]),
    ("pipeline vs raw broker ceiling", ["bench_pipeline.py"]),
    ("sink vs pyarrow alone", ["bench_sink.py"]),
    ("per-stage profile", ["profile_stages.py"]),
)


def run(label: str, args: list[str]) -> dict:
    print(f"\n=== {label}: {' '.join(args)}", flush=True)
    command = " ".join(["benchmarks/" + args[0], *args[1:]])
    if args[0] in NEEDS_LABELS and not LABELLED_DATA.exists():
        print(f"skipped: needs the labelled set {LABELLED_DATA} (see README, Data)", flush=True)
        return {"benchmark": label, "command": command, "exit_code": "skipped (no ../shared/data)", "seconds": 0.0}
    started = time.monotonic()
    code = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE.parent)
    return {"benchmark": label, "command": command, "exit_code": code, "seconds": round(time.monotonic() - started, 1)}


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def headline() -> list[str]:
    lines = []
    pipeline = _load("pipeline")
    if pipeline:
        p, c = pipeline["pipeline"], pipeline["ceiling"]
        lines += [
            f"- Pipeline (3 services + Triton, heuristic backends, embedded Tansu, {pipeline['documents']} WCXB "
            f"pages): **{p['saturated']['documents_per_s']} docs/s, {p['saturated']['words_per_s']:,} words/s**; "
            f"end-to-end latency at {p['paced']['offered_documents_per_s']} docs/s offered: p50 "
            f"{p['paced']['latency_p50_s']} s, p99 {p['paced']['latency_p99_s']} s.",
            f"- Raw broker ceiling (same messages, four relay hops): {c['saturated']['documents_per_s']} docs/s; "
            f"**overhead ratio {pipeline['overhead_ratio']}x**.",
        ]
    triton = _load("model_triton_cpu")
    if triton:
        ratios = ", ".join(f"{k} {v}" for k, v in triton["in_process_over_triton_docs_per_s"].items())
        lines.append(f"- Model via Triton (tiny shape, CPU): in-process / Triton docs/s = {ratios}.")
    return lines


def write_readme(runs: list[dict]) -> None:
    text = [
        "# Benchmark results", "",
        "Written by `make bench` (`benchmarks/run_all.py`); each `*.md` has its machine and versions, each `*.json` "
        "the raw numbers. Timings come from a shared 2-core machine unless a file says otherwise.", "",
        "## Headline", "", *headline(), "",
        "## Files", "",
        "- `executor.*`: `prox execute` vs plain JSONL I/O (bench_executor.py).",
        "- `heuristic_throughput.json`: heuristic writers vs the C4 line rule (bench_heuristic.py).",
        "- `model_cpu.*`: hf path in-process, released 0.3B shape, tiny CPU settings (bench_model.py).",
        "- `model_triton_cpu.*`: hf path via `prox model-server` + `TritonRefinerClient` vs in-process, tiny shape "
        "(bench_model.py --via-triton).",
        "- `pipeline.*`: pipeline throughput/latency vs the raw broker ceiling, CPU per document per process, "
        "message sizes (bench_pipeline.py).",
        "- `pipeline_fetch_wait_500ms.*`: the same before the `kafka.fetch_max_wait_ms` fix (aiokafka's 500 ms "
        "default), kept for the comparison (`PROX_KAFKA_FETCH_MAX_WAIT_MS=500 python benchmarks/bench_pipeline.py "
        "--name pipeline_fetch_wait_500ms`; not re-run by `make bench`).",
        "- `pipeline_one_writer_process.*`: the same with one model-server writer process instead of one per core "
        "(`PROX_WORKERS=1 python benchmarks/bench_pipeline.py --name pipeline_one_writer_process`; not re-run).",
        "- `sink.*`: the sink's rows/s and MB/s against pyarrow writing the same rows alone (bench_sink.py).",
        "- `faults.*`: the fault matrix (`make faults`, benchmarks/fault_matrix.py; not run by `make bench`).",
        "- `eval_doc_cv.json`, `eval_wcxb_cv.json`: the heuristic refiner's held-out evaluation "
        "(scripts/train_heuristic.py, docs/quality.md).",
        "- `model_gpu.md`: the GPU engine benchmark's commands (no GPU was available yet).",
        "- `profile.*`: per-stage CPU profile (profile_stages.py).",
        "- Capacity plan from these numbers: `docs/capacity.md`.", "",
        "## Last run", "", "| benchmark | command | exit | seconds |", "|---|---|---|---|",
        *[f"| {r['benchmark']} | `{r['command']}` | {r['exit_code']} | {r['seconds']} |" for r in runs], "",
    ]
    (RESULTS / "README.md").write_text("\n".join(text))


def main() -> int:
    runs = [run(label, args) for label, args in BENCHMARKS]
    write_readme(runs)
    print("\n" + "\n".join(headline()))
    failed = [r["benchmark"] for r in runs if isinstance(r["exit_code"], int) and r["exit_code"]]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
