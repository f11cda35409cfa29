"""Async Triton client for the refining models, used by the services (import-light: no torch/pytriton).

Requests hold at most the model's `max_batch_size` (read from Triton at start; a larger configured batch
is split, with a warning) and run with bounded concurrency.

Every gRPC status is classified on purpose (`STATUS_MEANING`):
- *infrastructure* — the server is down, restarting, loading its models or shutting down (UNAVAILABLE,
  NOT_FOUND "has no available versions", CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...): the request
  is retried with exponential backoff for as long as the budget allows (forever by default). Never a dead letter.
- *suspect* — the request may be at fault (INVALID_ARGUMENT, INTERNAL from a backend that raised, UNKNOWN):
  if the server is not healthy right after the failure, it was infrastructure after all (retry); if it is
  healthy, a batch is split to isolate the documents at fault, and one document alone is given
  `document_attempts` tries, each after a successful readiness check, before it becomes a `DocumentError`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, Sequence, TypeVar, Union

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from prox.common.backoff import Backoff
from prox.common.metrics import TRITON_BATCH_SIZE, TRITON_ERRORS, TRITON_REQUEST_SECONDS, TRITON_RETRIES
from prox.common.stage import InfrastructureError
from prox_proto import ModelInfo
from prox_proto.triton import (CHUNK_MODEL, CHUNK_RANGES, DOC_MODEL, KEEP_PROB, MODELS, PROGRAM, TEXT, ChunkDecision,
                               DocDecision, decode_chunk_ranges)

T = TypeVar("T")
log = logging.getLogger("prox.triton")

INFRASTRUCTURE, SUSPECT = "infrastructure", "suspect"

# gRPC status → (metrics kind, meaning). A status missing here is suspect ("other").
STATUS_MEANING = {
    "UNAVAILABLE": ("unavailable", INFRASTRUCTURE),  # not listening, restarting, connection reset
    "NOT_FOUND": ("model_not_ready", INFRASTRUCTURE),  # "unknown model ... has no available versions": (re)loading
    "CANCELLED": ("cancelled", INFRASTRUCTURE),  # server shutting down mid-request
    "DEADLINE_EXCEEDED": ("timeout", INFRASTRUCTURE),
    "RESOURCE_EXHAUSTED": ("resource_exhausted", INFRASTRUCTURE),  # queue full
    "ABORTED": ("aborted", INFRASTRUCTURE),
    "FAILED_PRECONDITION": ("failed_precondition", INFRASTRUCTURE),
    "UNAUTHENTICATED": ("unauthenticated", INFRASTRUCTURE),  # misconfiguration: keep retrying, alert fires
    "PERMISSION_DENIED": ("permission_denied", INFRASTRUCTURE),
    "UNIMPLEMENTED": ("unimplemented", INFRASTRUCTURE),  # wrong server version behind the address
    "INVALID_ARGUMENT": ("invalid_argument", SUSPECT),  # the model server refused a document
    "INTERNAL": ("internal", SUSPECT),  # backend raised, or its stub died (then the server is unhealthy)
    "UNKNOWN": ("unknown", SUSPECT),
    "OUT_OF_RANGE": ("out_of_range", SUSPECT),
    "DATA_LOSS": ("data_loss", SUSPECT),
    "ALREADY_EXISTS": ("already_exists", SUSPECT),  # not an inference answer: blame nobody until it repeats
}
DOCUMENT_ATTEMPTS = 3


@dataclass(frozen=True)
class DocumentError:
    """One document the model server kept refusing while healthy (for the dead-letter topic)."""

    reason: str  # "invalid_argument" | "internal" | ...: the kind of the last failure
    error_class: str
    message: str


class RetryBudgetExceeded(InfrastructureError):
    pass


class _Failed(Exception):
    """A Triton call failed; `meaning` says whose fault it may be."""

    def __init__(self, kind: str, meaning: str, cause: BaseException):
        super().__init__(f"{kind}: {_describe(cause)}")
        self.kind, self.meaning, self.cause = kind, meaning, cause


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InferenceServerException):
        return f"[{exc.status()}] {exc.message()}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def classify(exc: BaseException) -> tuple[str, str]:
    """(metrics kind, INFRASTRUCTURE | SUSPECT) of an exception raised by a gRPC call."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", INFRASTRUCTURE
    if isinstance(exc, (ConnectionError, OSError)):
        return "unavailable", INFRASTRUCTURE
    status = exc.status() if isinstance(exc, InferenceServerException) else None
    return STATUS_MEANING.get(str(status or "").rsplit(".", 1)[-1], ("other", SUSPECT))


class TritonRefinerClient:
    def __init__(
        self, url: str = "127.0.0.1:8001", concurrency: int = 4, request_timeout_s: float = 60.0,
        backoff_initial_s: float = 0.1, backoff_max_s: float = 4.0, budget_s: Optional[float] = None,
        max_batch_size: Optional[int] = None, document_attempts: int = DOCUMENT_ATTEMPTS,
    ):
        self.url, self.request_timeout_s, self.budget_s = url, request_timeout_s, budget_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.max_batch_size = max_batch_size
        self.document_attempts = max(1, document_attempts)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._client: Optional[grpcclient.InferenceServerClient] = None
        self._configs: dict[str, dict] = {}
        self._batch_sizes: dict[str, int] = {}

    @property
    def grpc(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            self._client = grpcclient.InferenceServerClient(url=self.url, channel_args=self._channel_args())
        return self._client

    def _channel_args(self) -> list[tuple[str, int]]:
        """tritonclient's defaults, plus a reconnect backoff capped like ours: gRPC's own grows to 120 s, so
        after an outage of a minute the channel would stay down long after the server is back."""
        keepalive = grpcclient.KeepAliveOptions()
        cap_ms = max(100, int(self.backoff_max_s * 1000))
        return [
            ("grpc.max_send_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
            ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
            ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
            # Not grpc.min_reconnect_backoff_ms: gRPC also takes it as the connect timeout (20 s by default);
            # at 100 ms a loaded machine's server could never be connected to.
            ("grpc.initial_reconnect_backoff_ms", min(cap_ms, 100)),
            ("grpc.max_reconnect_backoff_ms", cap_ms),
        ]

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
        """`call()` until it does not fail for infrastructure reasons (suspect failures propagate)."""
        backoff, started = Backoff(self.backoff_initial_s, self.backoff_max_s), time.monotonic()
        while True:
            try:
                return await call()
            except _Failed as failure:
                if failure.meaning != INFRASTRUCTURE:
                    raise
                await self._back_off(model, failure, backoff, started, budget_s)

    async def _back_off(self, model: str, failure: _Failed, backoff: Backoff, started: float,
                        budget_s: Optional[float]) -> None:
        delay = backoff.delay()
        if budget_s is not None and time.monotonic() - started + delay > budget_s:
            raise RetryBudgetExceeded(
                f"Triton at {self.url} ({model}) still failing after {time.monotonic() - started:.1f} s "
                f"(budget {budget_s:g} s); last error: {failure}"
            ) from failure.cause
        TRITON_RETRIES.labels(model=model).inc()
        await asyncio.sleep(delay)

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """One gRPC call with the request timeout; every failure becomes a classified `_Failed`."""
        try:
            return await asyncio.wait_for(awaitable, self.request_timeout_s)
        except (InferenceServerException, asyncio.TimeoutError, TimeoutError, OSError) as exc:
            raise _Failed(*classify(exc), exc) from exc

    # --- readiness and model metadata ---------------------------------------------------------
    async def wait_ready(self, timeout_s: Optional[float] = None, models: Sequence[str] = MODELS):
        """Wait until the server and `models` are ready (Triton's definition), retrying with backoff."""
        try:
            return await self._until_ready(models, timeout_s)
        except RetryBudgetExceeded as exc:
            raise TimeoutError(str(exc)) from exc

    async def _until_ready(self, models: Sequence[str], budget_s: Optional[float]) -> bool:
        async def check() -> bool:
            if not await self._ready_now(models):
                raise _Failed("model_not_ready", INFRASTRUCTURE, RuntimeError("server or models not ready yet"))
            return True

        return await self._retrying("readiness", check, budget_s)

    async def _ready_now(self, models: Sequence[str]) -> bool:
        try:
            ready = await self._guarded(self.grpc.is_server_ready())
            for model in models:
                ready = ready and await self._guarded(self.grpc.is_model_ready(model))
            return bool(ready)
        except _Failed:
            return False

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
        """Documents per request: the configured size, never more than the model's `max_batch_size`."""
        if model not in self._batch_sizes:
            served = max(1, int((await self._config(model)).get("max_batch_size", 0) or 1))
            wanted = self.max_batch_size or served
            if wanted > served:
                log.warning("model batch size %d is larger than %s's max_batch_size %d on %s; sending %d per request",
                            wanted, model, served, self.url, served)
            self._batch_sizes[model] = min(wanted, served)
        return self._batch_sizes[model]

    # --- inference ----------------------------------------------------------------------------
    async def doc_programs(self, texts: Sequence[str]) -> list[Union[DocDecision, DocumentError]]:
        return await self._programs(DOC_MODEL, texts, _doc_decisions)

    async def chunk_programs(self, texts: Sequence[str]) -> list[Union[ChunkDecision, DocumentError]]:
        return await self._programs(CHUNK_MODEL, texts, _chunk_decisions)

    async def _programs(self, model: str, texts: Sequence[str], parse) -> list:
        size = await self.batch_size(model)
        encoded, errors = _encode_texts(texts)
        good = [index for index in range(len(texts)) if index not in errors]
        batches = [good[start:start + size] for start in range(0, len(good), size)]
        results = await asyncio.gather(*(self._isolating(model, [encoded[i] for i in batch], parse)
                                         for batch in batches))
        decided = dict(zip((i for batch in batches for i in batch), (d for batch in results for d in batch)))
        return [errors[index] if index in errors else decided[index] for index in range(len(texts))]

    async def _isolating(self, model: str, encoded: list[bytes], parse) -> list:
        """Infer a batch; a suspect failure while the server is healthy splits it (or counts against a
        single document); while the server is unhealthy the same batch waits and is tried again."""
        strikes = 0
        while True:
            try:
                return parse(await self._infer(model, encoded))
            except _Failed as failure:
                if not await self._ready_now([model]):
                    await self._until_ready([model], self.budget_s)
                    continue
                if len(encoded) > 1:
                    break
                strikes += 1
                if strikes >= self.document_attempts:
                    return [DocumentError(failure.kind, type(failure.cause).__name__, str(failure))]
        middle = len(encoded) // 2
        halves = await asyncio.gather(
            self._isolating(model, encoded[:middle], parse), self._isolating(model, encoded[middle:], parse)
        )
        return halves[0] + halves[1]

    async def _infer(self, model: str, encoded: list[bytes]):
        async def attempt():
            text = grpcclient.InferInput(TEXT, [len(encoded), 1], "BYTES")
            text.set_data_from_numpy(np.array(encoded, dtype=np.object_).reshape(-1, 1))
            started = time.perf_counter()
            async with self._semaphore:
                try:
                    result = await self._guarded(
                        self.grpc.infer(model, [text], client_timeout=self.request_timeout_s)
                    )
                except _Failed as failure:
                    TRITON_ERRORS.labels(model=model, kind=failure.kind).inc()
                    raise
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
    keep_probs = result.as_numpy(KEEP_PROB).reshape(-1).tolist()
    return [DocDecision(program, float(p)) for program, p in zip(_strings(result, PROGRAM), keep_probs)]


def _chunk_decisions(result) -> list[ChunkDecision]:
    ranges = [decode_chunk_ranges(value) for value in result.as_numpy(CHUNK_RANGES).reshape(-1)]
    return [ChunkDecision(program, chunk_ranges) for program, chunk_ranges in zip(_strings(result, PROGRAM), ranges)]
