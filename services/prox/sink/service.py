"""`prox service sink`: run the sink; and waiting for its shards (`prox local`, tests)."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Optional

from ..common.logs import log_event, setup_logging
from .settings import SinkSettings

log = logging.getLogger("prox.sink")


def run_sink(settings: SinkSettings) -> int:
    """Run until SIGTERM/SIGINT (faust's worker handles both: open shards are closed and committed)."""
    import faust

    from .app import build_app, topic_partitions

    setup_logging(settings.log_level)
    partitions = asyncio.run(topic_partitions(settings.kafka, settings.topics.refined))
    app = build_app(settings, partitions)
    report = app.core.recover()
    log_event(log, logging.INFO, "sink starting", service="sink", group=settings.group, partitions=partitions,
              path=settings.sink.path, state_path=settings.state_path(), format=settings.sink.format,
              recovered=report, http_port=settings.http_port)
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    _dump_tasks_on_sigusr1(worker.loop)
    worker.execute_from_commandline()  # exits the process (code 0 on a clean stop)
    return 0


def run(args) -> int:
    from ..common.config import load_settings

    return run_sink(load_settings(args, struct_type=SinkSettings))


# --- the local stack ------------------------------------------------------------------------

async def wait_for_shards(shards_dir: str | Path, ids: Optional[set[str]] = None, *, rows: Optional[int] = None,
                          timeout_s: float = 120.0, stack=None, state_path: Optional[str] = None) -> dict:
    """Until the published shards (per the manifest in the state folder, `state_path` or the default
    `shards_dir.state`) hold every id in `ids` (or at least `rows` rows); returns {"path", "shards",
    "rows", "bytes"}. `prox local` awaits it once the collector saw every document, e.g.
    `await wait_for_shards("out/shards", rows=collector.state.refined, stack=stack)`; it sleeps on the
    event loop, so a signal stops the wait at once."""
    import time

    from .storage import Storage

    storage = Storage(str(shards_dir), "reader", state_url=state_path)
    deadline = time.monotonic() + timeout_s
    while True:
        if stack is not None:
            stack.check()
        published, missing = _published(storage, ids)
        if not missing and (rows is None or published["rows"] >= rows):
            return {"path": str(shards_dir), **published}
        if time.monotonic() > deadline:
            raise TimeoutError(f"shards in {shards_dir} incomplete after {timeout_s:.0f}s: {published['rows']} rows"
                               + (f", {missing} ids missing" if ids is not None else f" of {rows}"))
        await asyncio.sleep(0.5)


def _published(storage, ids: Optional[set[str]]) -> tuple[dict, int]:
    """({"shards", "rows", "bytes"} listed in the manifest, how many of `ids` they lack)."""
    from .manifest import Manifest
    from .verify import shard_ids

    entries = Manifest(storage).entries()
    missing = len(ids - set(shard_ids(storage, entries))) if ids is not None else 0
    return {"shards": len(entries), "rows": sum(e.rows for e in entries), "bytes": sum(e.bytes for e in entries)}, missing


def _dump_tasks_on_sigusr1(loop) -> None:
    """`kill -USR1 PID` writes every thread's and asyncio task's stack to stderr (a stuck sink, live)."""
    import faulthandler
    import signal
    import sys

    def dump(_signum, _frame):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        for task in asyncio.all_tasks(loop):
            print(f"--- task {task.get_name()} {task.get_coro()!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, dump)
