"""`prox local`: refine a file end to end on this machine, the same services as in production.

Starts the embedded broker, the model server and the three services as supervised children, streams the
input into the raw topic and collects refined / dropped / dead-letter messages into files (each id once).
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..models.backends import BACKENDS
from .io import add_input_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser("local", help="run the whole pipeline locally on a file and collect the results")
    parser.add_argument("--input", required=True, help="JSONL[.gz], Parquet or Common Crawl WET file")
    parser.add_argument("--output", required=True, help="refined documents (JSONL[.gz]); an existing file is "
                                                        "replaced only when an earlier run wrote it")
    parser.add_argument("--dropped", help="dropped documents (JSONL[.gz]), replaced like --output")
    parser.add_argument("--dlq", help="dead letters (JSONL[.gz]), replaced like --output")
    parser.add_argument("--shards", help="the sink's Parquet shards (default: a shards/ folder beside --output, "
                                         "its manifest in shards.state/; 'none' runs no sink); replaced only when "
                                         "it holds nothing but an earlier run's shards")
    add_input_arguments(parser)
    parser.add_argument("--doc-backend", default="heuristic", choices=BACKENDS)
    parser.add_argument("--doc-model", help="path of the doc refining model (hf backend)")
    parser.add_argument("--chunk-backend", default="heuristic", choices=BACKENDS)
    parser.add_argument("--chunk-model", help="path of the chunk refining model (hf backend)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workdir", help="where logs go (default: a temporary directory)")
    parser.add_argument("--stall-timeout-s", type=float, default=600.0,
                        help="fail when no document completes for this long")
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up as a dev environment")
    parser.set_defaults(func=run)


@dataclass
class Collected:
    refined: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    words_kept: int = 0
    ids: set = field(default_factory=set)
    last_progress: float = field(default_factory=time.monotonic)


class Collector:
    """Reads the output topics and writes each document id once (first wins) to its file."""

    def __init__(self, kafka, topics, output: str, dropped: Optional[str], dlq: Optional[str]):
        from ..common.inputs import open_text

        self.kafka, self.topics = kafka, topics
        self.files = {
            topics.refined: open_text(output, "wt"),
            topics.dropped: open_text(dropped, "wt") if dropped else None,
            topics.dlq: open_text(dlq, "wt") if dlq else None,
        }
        self.state = Collected()
        self.stop = asyncio.Event()

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from ..common.config import kafka_client_options
        from ..common.kafka_io import topic_partitions

        consumer = AIOKafkaConsumer(**kafka_client_options(self.kafka), enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, self.files)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not self.stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                for records in batch.values():
                    for record in records:
                        self._take(record)
        finally:
            await consumer.stop()
            for handle in self.files.values():
                if handle:
                    handle.close()

    def _take(self, record) -> None:
        message = json.loads(record.value)
        doc_id = message.get("id") or (record.key.decode("utf-8", "replace") if record.key else None)
        if doc_id is None or doc_id in self.state.ids:
            return
        self.state.ids.add(doc_id)
        self.state.last_progress = time.monotonic()
        if record.topic == self.topics.refined:
            self.state.refined += 1
            self.state.words_kept += (message.get("report") or {}).get("words_out", 0)
        elif record.topic == self.topics.dropped:
            self.state.dropped += 1
        else:
            self.state.dead_lettered += 1
        handle = self.files[record.topic]
        if handle:
            handle.write(json.dumps(message, ensure_ascii=False) + "\n")


def run(args) -> int:
    from ..common.logs import setup_logging

    setup_logging("INFO")
    return asyncio.run(_run_until_signalled(args))


async def _run_until_signalled(args) -> int:
    """SIGTERM or SIGINT cancels the run; `_run`'s cleanup then stops every child before we exit."""
    main, received = asyncio.current_task(), []

    def on_signal(signum: int) -> None:
        received.append(signum)
        main.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await _run(args)
    except asyncio.CancelledError:
        if not received:
            raise
        print(f"prox local: {signal.Signals(received[0]).name} received; stack stopped", file=sys.stderr)
        return 128 + received[0]


async def _run(args) -> int:
    from prox_proto.topics import Topics

    from ..common.progress import Progress
    from .io import input_documents, input_problem, produce_documents
    from .outputs import OutputInUse
    from .stack import BrokerDied, CrashLoop, LocalStack, ModelOptions

    try:
        shards = _prepare_outputs(args)
    except OutputInUse as exc:  # before anything starts: no broker, no children
        print(f"prox local: error: {exc}", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="prox-local-"))
    models = ModelOptions(args.doc_backend, args.doc_model, args.chunk_backend, args.chunk_model)
    stack = LocalStack(workdir, models, partitions=args.partitions, shards=shards)
    topics = Topics()
    started = time.monotonic()
    try:
        print(f"prox local: starting broker, model server and services (logs in {stack.logs})", file=sys.stderr)
        await stack.start()
        await stack.wait_ready()
        if args.keep_running:
            print(json.dumps(stack.ports(), indent=2))
        collector = Collector(stack.kafka_settings(), topics, args.output, args.dropped, args.dlq)
        collecting = asyncio.create_task(collector.run())
        t0 = time.monotonic()

        def malformed(item) -> None:
            print(f"prox local: {args.input}:{item.line}: {input_problem(item)}", file=sys.stderr)

        stats = await produce_documents(stack.kafka_settings(), topics.raw, input_documents(args), args.limit,
                                        on_malformed=malformed)
        await _wait_accounted(stack, collector, stats.ids, Progress("refine", total=len(stats.ids)),
                              args.stall_timeout_s)
        elapsed = time.monotonic() - t0
        collector.stop.set()
        await collecting
        written = await _wait_for_shards(stack, shards, collector.state.refined)
        _print_summary(stats, collector.state, elapsed, written)
        missing = stats.ids - collector.state.ids
        if args.keep_running:
            print("prox local: stack running; Ctrl-C stops it", file=sys.stderr)
            while True:
                stack.check()
                await asyncio.sleep(1)
        return 0 if not missing else 1
    except (BrokerDied, CrashLoop) as exc:
        print(f"prox local: error: {exc}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        print(f"prox local: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        logging.getLogger("prox.local").info("stopped after %.1fs", time.monotonic() - started)


async def _wait_accounted(stack, collector: Collector, ids: set, progress, stall_timeout_s: float) -> None:
    while not ids <= collector.state.ids:
        stack.check()
        done = len(ids & collector.state.ids)
        progress.update(done, f"refined {collector.state.refined} dropped {collector.state.dropped} "
                              f"dlq {collector.state.dead_lettered}")
        if time.monotonic() - collector.state.last_progress > stall_timeout_s:
            raise TimeoutError(f"no document completed for {stall_timeout_s:.0f}s "
                               f"({len(ids) - done} outstanding); logs in {stack.logs}")
        await asyncio.sleep(0.2)
    progress.update(len(ids), force=True)
    progress.close()


def _prepare_outputs(args) -> Optional[Path]:
    """The shards folder (None: no sink). An earlier run's outputs are replaced (the sink would skip ids
    already in its shards); anything else there stops the run (OutputInUse): see outputs.py."""
    from .outputs import prepare_outputs

    shards = None
    if args.shards != "none":
        shards = Path(args.shards) if args.shards else Path(args.output).resolve().parent / "shards"
    prepare_outputs({"--output": args.output, "--dropped": args.dropped, "--dlq": args.dlq}, shards)
    return shards


async def _wait_for_shards(stack, shards: Optional[Path], refined: int) -> Optional[dict]:
    """Until the sink's published shards hold every refined document (it closes a shard every few seconds)."""
    if shards is None:
        return None
    from ..sink.service import wait_for_shards

    return await wait_for_shards(shards, rows=refined, stack=stack, timeout_s=180)


def _print_summary(stats, state: Collected, elapsed: float, shards: Optional[dict]) -> None:
    summary = {
        "documents_in": stats.sent, "distinct_ids": len(stats.ids), "refined": state.refined,
        "dropped": state.dropped, "dead_lettered": state.dead_lettered, "duplicate_input_ids": stats.duplicates,
        "malformed_input": stats.malformed,
        "repaired_input": stats.repaired, "words_kept": state.words_kept,
        "seconds": round(elapsed, 2), "documents_per_s": round(len(stats.ids) / max(elapsed, 1e-9), 1),
        "accounted": len(stats.ids & state.ids) == len(stats.ids),
    }
    if shards is not None:
        summary.update(shards=shards["path"], shard_files=shards["shards"], shard_rows=shards["rows"])
    print("\nProX Stream local run")
    for key, value in summary.items():
        print(f"  {key:<22}{value}")
    print(json.dumps(summary))
