"""The embedded writers on every core: each batch Triton hands a model instance is written in one of N
worker processes (CPU writers are Python code: threads would share one core under the GIL).

Each worker loads both writers once. A worker that dies breaks the pool; the model server then exits, so
its supervisor (the local stack, Kubernetes) restarts it, and the clients retry meanwhile (the server is
unhealthy): no document is blamed for it.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple, Optional, Sequence

from prox_proto import ModelInfo


class WriterSpec(NamedTuple):
    backend: str
    model_path: Optional[str]
    options: dict


_writers: dict = {}


def _start_worker(specs: dict[str, WriterSpec]) -> None:
    from .backends import load_chunk_writer, load_doc_writer

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the model server
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    loaders = {"doc": load_doc_writer, "chunk": load_chunk_writer}
    for level, spec in specs.items():
        _writers[level] = loaders[level](spec.backend, spec.model_path, **spec.options)


def _write(level: str, texts: list[str]) -> list:
    return _writers[level].write(texts)


def _info(level: str) -> ModelInfo:
    return _writers[level].info


class WriterPool:
    def __init__(self, specs: dict[str, WriterSpec], workers: int):
        self.workers = workers
        self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker, initargs=(specs,))
        # Submitted at once from this thread, so every worker starts now, as a child of this thread.
        levels = [level for level in specs for _ in range(workers)]
        futures = [self.executor.submit(_info, level) for level in levels]
        self.infos = {level: future.result() for level, future in zip(levels, futures)}

    def writer(self, level: str) -> "PooledWriter":
        return PooledWriter(self, level)

    @property
    def broken(self) -> bool:
        return bool(getattr(self.executor, "_broken", False))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class PooledWriter:
    """A DocWriter/ChunkWriter whose `write` runs in the pool."""

    def __init__(self, pool: WriterPool, level: str):
        self.pool, self.level, self.info = pool, level, pool.infos[level]

    def write(self, texts: Sequence[str]) -> list:
        try:
            return self.pool.executor.submit(_write, self.level, list(texts)).result()
        except BrokenProcessPool as exc:
            raise RuntimeError("a writer worker process died; the model server must restart") from exc
