"""`prox model-server`: serve the doc and chunk refining models on Triton."""
from __future__ import annotations

import os
import sys

from .backends import BACKENDS

# (flag, environment variable, default, type, help)
OPTIONS = (
    ("--doc-backend", "PROX_DOC_BACKEND", "heuristic", str, "doc-level writer backend: " + "|".join(BACKENDS)),
    ("--doc-model", "PROX_DOC_MODEL", None, str, "doc-level model path (hf: a save_pretrained directory)"),
    ("--chunk-backend", "PROX_CHUNK_BACKEND", "heuristic", str, "chunk-level writer backend"),
    ("--chunk-model", "PROX_CHUNK_MODEL", None, str, "chunk-level model path"),
    ("--http-port", "PROX_TRITON_HTTP_PORT", 8000, int, "Triton HTTP port (/v2/health/ready)"),
    ("--grpc-port", "PROX_TRITON_GRPC_PORT", 8001, int, "Triton gRPC port (the services' client)"),
    ("--metrics-port", "PROX_TRITON_METRICS_PORT", 8002, int, "Triton's Prometheus metrics port"),
    ("--max-batch-size", "PROX_MAX_BATCH_SIZE", 32, int,
     "Triton max batch size (dynamic batching); the services' model_batch_size should not exceed it"),
    ("--max-queue-delay-us", "PROX_MAX_QUEUE_DELAY_US", 5000, int, "dynamic batcher queue delay (µs)"),
    ("--max-text-bytes", "PROX_MAX_TEXT_BYTES", 4 * 1024 * 1024, int, "larger texts are INVALID_ARGUMENT"),
    ("--doc-prompt", "PROX_DOC_PROMPT", "original", str,
     "hf: original (as the original ProX: cut the prompt at 2,000 ids) | fixed (shorten the document, keep [/INST])"),
    ("--doc-decode", "PROX_DOC_DECODE", "logits", str, "hf: logits (one forward pass) | generate (greedy)"),
    ("--keep-threshold", "PROX_KEEP_THRESHOLD", 0.5, float, "hf logits: keep_doc() when keep_prob >= this"),
    ("--chunk-tokens", "PROX_CHUNK_TOKENS", 1500, int, "hf: token budget of one chunk of numbered lines"),
    ("--device", "PROX_DEVICE", "cpu", str, "hf: cpu | cuda (bf16 on cuda, fp32 on cpu)"),
    ("--workers", "PROX_MODEL_WORKERS", 0, int,
     "writer processes (and Triton instances per model); 0: one per core for CPU writers, one for hf"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "model-server", help="serve the refining models (prox_doc, prox_chunk) on Triton",
        description="Serve prox_doc and prox_chunk on NVIDIA Triton (PyTriton) with dynamic batching.",
    )
    for flag, env, default, kind, help_text in OPTIONS:
        parser.add_argument(flag, type=kind, default=_from_env(env, default, kind), help=f"{help_text} [{env}]")
    parser.set_defaults(func=run)


def _from_env(env: str, default, kind):
    value = os.environ.get(env)
    return default if value in (None, "") else kind(value)


def ensure_triton_library_path() -> None:
    """PyTriton's tritonserver starts a Python stub that must load the venv's libpython (base prefix lib).

    The stub is a child process, so exporting the variable here before Triton starts is enough.
    """
    lib_dir = os.path.join(sys.base_prefix, "lib")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if lib_dir not in current.split(os.pathsep):
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [lib_dir, current]))


def writer_options(args, level: str) -> dict:
    if getattr(args, f"{level}_backend") != "hf":
        return {}
    options = {"device": args.device, "batch_size": args.max_batch_size}
    if level == "doc":
        options.update(doc_prompt=args.doc_prompt, doc_decode=args.doc_decode, keep_threshold=args.keep_threshold)
    else:
        options.update(chunk_tokens=args.chunk_tokens)
    return options


def run(args) -> int:
    import logging
    import signal
    import threading

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_triton_library_path()
    from .backends import load_chunk_writer, load_doc_writer
    from .pool import WriterPool, WriterSpec
    from .server import ServerSettings, serve

    workers = args.workers or (1 if "hf" in (args.doc_backend, args.chunk_backend) else os.cpu_count() or 1)
    pool = None
    try:
        if workers > 1:
            pool = WriterPool({level: WriterSpec(getattr(args, f"{level}_backend"), getattr(args, f"{level}_model"),
                                                 writer_options(args, level)) for level in ("doc", "chunk")}, workers)
            doc_writer, chunk_writer = pool.writer("doc"), pool.writer("chunk")
        else:
            doc_writer = load_doc_writer(args.doc_backend, args.doc_model, **writer_options(args, "doc"))
            chunk_writer = load_chunk_writer(args.chunk_backend, args.chunk_model, **writer_options(args, "chunk"))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"prox model-server: error: {_one_line(exc)}", file=sys.stderr)
        if pool:
            pool.close()
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = ServerSettings(
        http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
        max_batch_size=args.max_batch_size, max_queue_delay_us=args.max_queue_delay_us,
        max_text_bytes=args.max_text_bytes, instances=workers,
    )
    try:
        serve(doc_writer, chunk_writer, settings, stop, healthy=lambda: pool is None or not pool.broken)
    finally:
        if pool:
            pool.close()
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
