"""What exactly-once costs: the pipeline on Apache Kafka with PROX_EXACTLY_ONCE off and on, in the same run.

Each mode gets a fresh broker (the same pinned Apache Kafka) and the local stack (model server with the
heuristic writers, the three services, 4 partitions); the modes alternate, `--rounds` times each, so drift
in the shared machine's load falls on both. A round sends `--documents` real WCXB pages at once and times
until every id is out (refined or dropped), read as a downstream consumer reads it (read_committed with
exactly-once).

    python benchmarks/bench_exactly_once.py [--documents 1000] [--rounds 2]  →  results/exactly_once.{json,md}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchtools import RESULTS, default_data, load_pages, machine  # noqa: E402

from tests.fixtures.stack import start_stack  # noqa: E402
from tests.helpers import apache_kafka  # noqa: E402

MODES = {"at_least_once": "false", "exactly_once": "true"}


async def one_round(mode: str, pages: list[dict], work: Path) -> dict:
    broker = apache_kafka.ApacheKafka(work / "kafka").start()
    try:
        running = await start_stack(work / "stack", partitions=4, external_kafka=broker.bootstrap_servers,
                                    service_env={"PROX_EXACTLY_ONCE": MODES[mode]})
        try:
            docs = [{"id": f"{mode}-{i}", "text": page["text"]} for i, page in enumerate(pages)]
            started = time.perf_counter()
            ids = await running.produce(docs)
            found = await running.wait_for_outputs(ids, timeout_s=900)
            seconds = time.perf_counter() - started
            out = sum(1 for role in ("refined", "dropped") for doc_id in found[role] if doc_id in set(ids))
            records = await running.records()
            copies = sum(1 for role in ("refined", "dropped") for r in records[role])
            return {"mode": mode, "documents": len(docs), "out": out, "records_in_output_topics": copies,
                    "seconds": round(seconds, 2), "documents_per_s": round(len(docs) / seconds, 1)}
        finally:
            running.stack.stop()
    finally:
        broker.stop()


def markdown(result: dict) -> str:
    lines = ["# Exactly-once vs at-least-once, same run", "",
             f"Machine: {result['machine']['cpu']}, {result['machine']['nproc']} cores, load "
             f"{result['machine']['load_average_1m']}. {result['documents']} WCXB pages a round sent at once, "
             "Apache Kafka 3.9.1 (fresh broker per round), heuristic writers, 4 partitions; modes alternate.", "",
             "| mode | rounds | docs/s (each round) | median docs/s | records in output topics |", "|---|---|---|---|---|"]
    for mode in MODES:
        rows = [r for r in result["rounds"] if r["mode"] == mode]
        rates = [r["documents_per_s"] for r in rows]
        lines.append(f"| {mode} | {len(rows)} | {', '.join(map(str, rates))} | {statistics.median(rates)} | "
                     f"{', '.join(str(r['records_in_output_topics']) for r in rows)} |")
    lines += ["", f"Exactly-once throughput relative to at-least-once: **{result['ratio']}x**."]
    return "\n".join(lines) + "\n"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if apache_kafka.problem():
        print(f"bench_exactly_once: {apache_kafka.problem()}", file=sys.stderr)
        return 2
    pages = load_pages(default_data(), limit=args.documents)
    rounds = []
    for number in range(args.rounds):
        for mode in MODES:
            with tempfile.TemporaryDirectory(prefix="prox-bench-eos-") as work:
                rounds.append(await one_round(mode, pages, Path(work)))
                print(json.dumps(rounds[-1]), flush=True)
    median = {mode: statistics.median(r["documents_per_s"] for r in rounds if r["mode"] == mode) for mode in MODES}
    result = {"documents": len(pages), "machine": machine(), "rounds": rounds,
              "ratio": round(median["exactly_once"] / median["at_least_once"], 2)}
    (RESULTS / "exactly_once.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "exactly_once.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
