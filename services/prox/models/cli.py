"""`prox model-server`: serve the doc and chunk refining models on Triton."""
from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    from ..common.config import add_settings_arguments
    from .settings import ModelServerSettings

    parser = subparsers.add_parser(
        "model-server", help="serve the refining models (prox_doc, prox_chunk) on Triton",
        description="Serve prox_doc and prox_chunk on NVIDIA Triton (PyTriton) with dynamic batching.",
    )
    add_settings_arguments(parser, ModelServerSettings)
    parser.set_defaults(func=run)


def ensure_triton_library_path() -> None:
    """PyTriton's tritonserver starts a Python stub that must load the venv's libpython (base prefix lib).

    The stub is a child process, so exporting the variable here before Triton starts is enough.
    """
    lib_dir = os.path.join(sys.base_prefix, "lib")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if lib_dir not in current.split(os.pathsep):
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [lib_dir, current]))


def run(args) -> int:
    import logging
    import signal
    import threading

    from ..common.config import load_settings
    from .settings import ModelServerSettings

    settings = load_settings(args, struct_type=ModelServerSettings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_triton_library_path()
    from .server import serve

    workers = settings.worker_count(os.cpu_count() or 1)
    try:
        pool, doc_writer, chunk_writer = _writers(settings, workers)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"prox model-server: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve(doc_writer, chunk_writer, settings.triton, stop, instances=workers,
              healthy=lambda: pool is None or not pool.broken)
    finally:
        if pool:
            pool.close()
    return 0


def _writers(settings, workers: int):
    """(pool or None, doc writer, chunk writer): in `workers` processes when there is more than one."""
    from .backends import load_chunk_writer, load_doc_writer
    from .pool import WriterPool, WriterSpec

    if workers == 1:
        return (None, load_doc_writer(settings.doc.backend, settings.doc.model, **settings.writer_options("doc")),
                load_chunk_writer(settings.chunk.backend, settings.chunk.model, **settings.writer_options("chunk")))
    specs = {level: WriterSpec(getattr(settings, level).backend, getattr(settings, level).model,
                               settings.writer_options(level)) for level in ("doc", "chunk")}
    pool = WriterPool(specs, workers)
    return pool, pool.writer("doc"), pool.writer("chunk")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
