"""Async Triton client for the refining models, used by the services (import-light: no torch/pytriton).

Requests hold at most the model's max batch size, run with bounded concurrency, and are retried with
exponential backoff on transient errors for as long as the budget allows (forever by default).
INVALID_ARGUMENT is a per-document failure: a rejected batch is split until the bad documents are isolated.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, Sequence, TypeVar, Union

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from prox.common.metrics import TRITON_BATCH_SIZE, TRITON_ERRORS, TRITON_REQUEST_SECONDS, TRITON_RETRIES
from prox_proto import ModelInfo

from .backends import ChunkDecision, DocDecision

DOC_MODEL, CHUNK_MODEL = "prox_doc", "prox_chunk"
T = TypeVar("T")

_KIND_BY_STATUS = {
    "UNAVAILABLE": "unavailable", "DEADLINE_EXCEEDED": "timeout", "RESOURCE_EXHAUSTED": "resource_exhausted",
    "INVALID_ARGUMENT": "invalid_argument",
}
TRANSIENT_KINDS = frozenset({"unavailable", "timeout", "resource_exhausted"})


@dataclass(frozen=True)
class DocumentError:
    """One document the model server refused (for the dead-letter topic)."""

    reason: str  # "invalid_argument"
    error_class: str
    message: str


class RetryBudgetExceeded(RuntimeError):
    pass


class _TransientError(Exception):
    def __init__(self, kind: str, cause: BaseException):
        super().__init__(f"{kind}: {_describe(cause)}")
        self.kind, self.cause = kind, cause


class _Rejected(Exception):
    def __init__(self, cause: BaseException):
        super().__init__(_describe(cause))
        self.cause = cause


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InferenceServerException):
        return f"[{exc.status()}] {exc.message()}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "unavailable"
    status = exc.status() if isinstance(exc, InferenceServerException) else None
    name = str(status or "").rsplit(".", 1)[-1]
    return _KIND_BY_STATUS.get(name, "other")


class Backoff:
    """Exponential delays with full jitter in the upper half: initial, 2x, 4x ... capped at maximum."""

    def __init__(self, initial_s: float, maximum_s: float):
        self.initial_s, self.maximum_s, self.next_s = initial_s, maximum_s, initial_s

    def delay(self) -> float:
        delay = self.next_s * random.uniform(0.5, 1.0)
        self.next_s = min(self.next_s * 2, self.maximum_s)
        return delay


class TritonRefinerClient:
    def __init__(
        self, url: str = "127.0.0.1:8001", concurrency: int = 4, request_timeout_s: float = 60.0,
        backoff_initial_s: float = 0.1, backoff_max_s: float = 4.0, budget_s: Optional[float] = None,
        max_batch_size: Optional[int] = None,
    ):
        self.url, self.request_timeout_s, self.budget_s = url, request_timeout_s, budget_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.max_batch_size = max_batch_size
        self._semaphore = asyncio.Semaphore(concurrency)
        self._client: Optional[grpcclient.InferenceServerClient] = None
        self._configs: dict[str, dict] = {}

    @property
    def grpc(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            self._client = grpcclient.InferenceServerClient(url=self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> "TritonRefinerClient":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.close()

    # --- retries ------------------------------------------------------------------------------
    async def _retrying(self, model: str, call: Callable[[], Awaitable[T]], budget_s: Optional[float]) -> T:
        backoff, started = Backoff(self.backoff_initial_s, self.backoff_max_s), time.monotonic()
        while True:
            try:
                return await call()
            except _TransientError as error:
                TRITON_ERRORS.labels(model=model, kind=error.kind).inc()
                delay = backoff.delay()
                if budget_s is not None and time.monotonic() - started + delay > budget_s:
                    raise RetryBudgetExceeded(
                        f"Triton at {self.url} ({model}) still failing after {time.monotonic() - started:.1f} s "
                        f"(budget {budget_s:g} s); last error: {error}"
                    ) from error.cause
                TRITON_RETRIES.labels(model=model).inc()
                await asyncio.sleep(delay)

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """One gRPC call with the request timeout; transient failures become _TransientError."""
        try:
            return await asyncio.wait_for(awaitable, self.request_timeout_s)
        except (InferenceServerException, asyncio.TimeoutError, TimeoutError, ConnectionError) as exc:
            kind = error_kind(exc)
            if kind in TRANSIENT_KINDS:
                raise _TransientError(kind, exc) from exc
            raise

    # --- readiness and model metadata ---------------------------------------------------------
    async def wait_ready(self, timeout_s: Optional[float] = None, models: Sequence[str] = (DOC_MODEL, CHUNK_MODEL)):
        """Wait until the server and `models` are ready (Triton's definition), retrying with backoff."""
        async def check() -> bool:
            ready = await self._guarded(self.grpc.is_server_ready())
            for model in models:
                ready = ready and await self._guarded(self.grpc.is_model_ready(model))
            if not ready:
                raise _TransientError("unavailable", RuntimeError("server or models not ready yet"))
            return True

        try:
            return await self._retrying("readiness", check, timeout_s)
        except RetryBudgetExceeded as exc:
            raise TimeoutError(str(exc)) from exc

    async def _config(self, model: str) -> dict:
        if model not in self._configs:
            response = await self._retrying(
                model, lambda: self._guarded(self.grpc.get_model_config(model, as_json=True)), self.budget_s
            )
            self._configs[model] = response["config"]
        return self._configs[model]

    async def model_info(self, model: str) -> ModelInfo:
        parameters = (await self._config(model)).get("parameters", {})

        def parameter(key: str, default: str) -> str:
            return parameters.get(key, {}).get("string_value", default)

        return ModelInfo(name=model, version=parameter("prox_model_version", "1"), backend=parameter("prox_backend", ""))

    async def batch_size(self, model: str) -> int:
        if self.max_batch_size:
            return self.max_batch_size
        return max(1, int((await self._config(model)).get("max_batch_size", 1)))

    # --- inference ----------------------------------------------------------------------------
    async def doc_programs(self, texts: Sequence[str]) -> list[Union[DocDecision, DocumentError]]:
        return await self._programs(DOC_MODEL, texts, _doc_decisions)

    async def chunk_programs(self, texts: Sequence[str]) -> list[Union[ChunkDecision, DocumentError]]:
        return await self._programs(CHUNK_MODEL, texts, _chunk_decisions)

    async def _programs(self, model: str, texts: Sequence[str], parse) -> list:
        size = await self.batch_size(model)
        batches = [list(texts[start:start + size]) for start in range(0, len(texts), size)]
        results = await asyncio.gather(*(self._isolating(model, batch, parse) for batch in batches))
        return [item for batch in results for item in batch]

    async def _isolating(self, model: str, texts: list[str], parse) -> list:
        """Infer a batch; when the server rejects it, split it so only the bad documents fail."""
        encoded, errors = _encode_texts(texts)
        if errors:
            return await self._merge_local_errors(model, encoded, errors, parse)
        try:
            return parse(await self._infer(model, encoded))
        except _Rejected as rejected:
            if len(texts) == 1:
                return [DocumentError("invalid_argument", type(rejected.cause).__name__, str(rejected))]
        middle = len(texts) // 2
        halves = await asyncio.gather(
            self._isolating(model, texts[:middle], parse), self._isolating(model, texts[middle:], parse)
        )
        return halves[0] + halves[1]

    async def _merge_local_errors(self, model: str, encoded: list, errors: dict[int, DocumentError], parse) -> list:
        good = [value for index, value in enumerate(encoded) if index not in errors]
        decided = iter(await self._isolating(model, [v.decode("utf-8") for v in good], parse) if good else [])
        return [errors[index] if index in errors else next(decided) for index in range(len(encoded))]

    async def _infer(self, model: str, encoded: list[bytes]):
        async def attempt():
            text = grpcclient.InferInput("text", [len(encoded), 1], "BYTES")
            text.set_data_from_numpy(np.array(encoded, dtype=np.object_).reshape(-1, 1))
            started = time.perf_counter()
            async with self._semaphore:
                try:
                    result = await self._guarded(
                        self.grpc.infer(model, [text], client_timeout=self.request_timeout_s)
                    )
                except InferenceServerException as exc:
                    kind = error_kind(exc)
                    TRITON_ERRORS.labels(model=model, kind=kind).inc()
                    raise _Rejected(exc) if kind == "invalid_argument" else exc
            TRITON_REQUEST_SECONDS.labels(model=model).observe(time.perf_counter() - started)
            TRITON_BATCH_SIZE.labels(model=model).observe(len(encoded))
            return result

        return await self._retrying(model, attempt, self.budget_s)


def _encode_texts(texts: Sequence[str]) -> tuple[list[bytes], dict[int, DocumentError]]:
    encoded, errors = [], {}
    for index, text in enumerate(texts):
        try:
            encoded.append(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # lone surrogates: no UTF-8 form to send
            encoded.append(b"")
            errors[index] = DocumentError("invalid_argument", type(exc).__name__, f"text is not encodable: {exc}")
    return encoded, errors


def _strings(result, name: str) -> list[str]:
    return [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in result.as_numpy(name).reshape(-1)]


def _doc_decisions(result) -> list[DocDecision]:
    keep_probs = result.as_numpy("keep_prob").reshape(-1).tolist()
    return [DocDecision(program, float(p)) for program, p in zip(_strings(result, "program"), keep_probs)]


def _chunk_decisions(result) -> list[ChunkDecision]:
    ranges = [[tuple(r) for r in json.loads(value)] for value in _strings(result, "chunk_ranges")]
    return [ChunkDecision(program, chunk_ranges) for program, chunk_ranges in zip(_strings(result, "program"), ranges)]
