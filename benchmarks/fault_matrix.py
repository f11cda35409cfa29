"""`make faults`: the fault matrix on >= 2,000 documents per scenario, each scenario repeated.

Scenarios (tests/fixtures/scenarios.py, the same code as the fault tests): SIGKILL each service mid-stream,
the model server down 30 s, the model server restarted 5 times in a row, an executor replica killed (its
partner takes over), on the embedded broker; and the broker restarted mid-stream on Apache Kafka (KRaft,
durable log dir). Each run asserts that every id is refined or dropped exactly once after de-duplication,
with the content `prox execute` gives, and that no document was dead-lettered. It reports duplicates and
time to recover: from the fault on, the longest stretch in which no new document came out.

    python benchmarks/fault_matrix.py [--docs 2000] [--repeats 2] [--only NAME]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchtools  # noqa: E402
from tests.fixtures import scenarios  # noqa: E402
from tests.fixtures.stack import start_stack  # noqa: E402
from tests.helpers import apache_kafka  # noqa: E402

SERVICE_ENV = {"PROX_BATCH_SIZE": "16", "PROX_MODEL_BATCH_SIZE": "8"}


def scenario_runs(docs: int) -> dict:
    """name -> (needs Apache Kafka, coroutine factory(stack, broker, tag) returning a FaultRun)."""
    def kill(service):
        return lambda stack, broker, tag: scenarios.sigkill_scenario(stack, service, tag, count=docs)

    return {
        "sigkill doc-refiner": (False, kill("doc-refiner")),
        "sigkill chunk-refiner": (False, kill("chunk-refiner")),
        "sigkill executor": (False, kill("executor")),
        "model server down 30 s": (False, lambda stack, broker, tag: scenarios.model_server_outage_scenario(
            stack, tag, down_s=30, count=docs)),
        "model server restarted 5x": (False, lambda stack, broker, tag: scenarios.model_server_restarts_scenario(
            stack, tag, restarts=5, count=docs)),
        "executor replica killed": (False, lambda stack, broker, tag: scenarios.replica_failover_scenario(
            stack, "executor-1", tag, count=docs)),
        "broker restarted (Apache Kafka)": (True, lambda stack, broker, tag: scenarios.broker_restart_scenario(
            stack, broker.restart, tag, count=docs)),
    }


async def recovery_s(stack, tag: str, fault_at: float) -> float:
    """Time to recover: the longest stretch without a new document coming out (refined or dropped), from the
    fault on (broker timestamps of each document's first output)."""
    first: dict[str, float] = {}
    for role, records in (await stack.records()).items():
        for record in records:
            doc_id = json.loads(record.value).get("id") or ""
            if doc_id.startswith(f"{tag}-") and role != "dlq":
                first[doc_id] = min(first.get(doc_id, record.timestamp / 1000), record.timestamp / 1000)
    times = [fault_at] + sorted(t for t in first.values() if t >= fault_at)
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


async def run_matrix(args) -> list[dict]:
    rows, runs = [], scenario_runs(args.docs)
    chosen = {name: run for name, run in runs.items() if not args.only or args.only in name}
    work = Path(tempfile.mkdtemp(prefix="prox-faults-"))
    for on_kafka in (False, True):
        selected = {name: run for name, (kafka, run) in chosen.items() if kafka == on_kafka}
        if not selected:
            continue
        broker = apache_kafka.ApacheKafka(work / "kafka").start() if on_kafka else None
        stack = await start_stack(work / ("kafka-stack" if on_kafka else "stack"), replicas={"executor": 2},
                                  partitions=4, service_env=SERVICE_ENV,
                                  external_kafka=broker.bootstrap_servers if broker else None)
        try:
            for name, run in selected.items():
                for repeat in range(args.repeats):
                    tag = f"{name.split()[0]}-{len(rows)}"
                    started = time.monotonic()
                    fault = await run(stack, broker, tag)
                    await scenarios.assert_no_dead_letters(stack, tag)
                    rows.append({"scenario": name, "repeat": repeat + 1, "documents": args.docs,
                                 "duplicates": fault.duplicates, "dead_letters": 0,
                                 "recovery_s": round(await recovery_s(stack, tag, fault.fault_at), 1),
                                 "seconds": round(time.monotonic() - started, 1)})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            stack.stack.stop()
            if broker:
                broker.stop()
    return rows


def markdown(rows: list[dict], args) -> str:
    lines = [
        "# Fault matrix (`make faults`)", "",
        f"{args.docs} documents per run, {args.repeats} runs per scenario; every run asserted every id refined or "
        "dropped exactly once after de-duplication by id, with the content `prox execute` gives, and zero dead "
        "letters. *Time to recover*: from the fault on, the longest stretch in which no new document came out "
        "(broker timestamps of first outputs). Embedded broker (Tansu) unless noted; Apache Kafka "
        "is the KRaft broker pinned in deploy/kafka/pom.xml, restarted with a controlled shutdown.", "",
        f"Machine: {json.dumps(benchtools.machine())}", "",
        "| scenario | run | documents | duplicates | dead letters | time to recover (s) | run time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['scenario']} | {r['repeat']} | {r['documents']} | {r['duplicates']} | {r['dead_letters']} | "
              f"{r['recovery_s']} | {r['seconds']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    if apache_kafka.problem():
        print(f"fault_matrix: {apache_kafka.problem()}", file=sys.stderr)
        return 2
    rows = asyncio.run(run_matrix(args))
    benchtools.write_results("faults", {"machine": benchtools.machine(), "versions": benchtools.versions(),
                                        "docs": args.docs, "repeats": args.repeats, "rows": rows},
                             markdown(rows, args))
    print(markdown(rows, args))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM unwinds: the stacks are stopped
    sys.exit(main())
