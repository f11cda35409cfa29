"""The model engine of the `hf` backend: token-id prompts in, logits or greedy new tokens out.

Only torch and transformers (imported lazily), so the benchmark runs it on a bare GPU machine.
- forward passes: prompts grouped by length under a token budget (little padding), left-padded, only the
  last position's logits computed;
- generation: transformers' continuous batching (paged KV cache, one stream over every prompt) sized here, from
  the model's shape and a share of the device's memory (`continuous_sizing`), on CUDA and CPU alike; or padded
  generate() over the same length groups. Greedy, each cut before its first EOS and never run past the context
  (`new_token_budget`); a request that fails inside generation raises `GenerationFailed`, never a short program;
- attention: `choose_attention` picks flash attention where it can run, sdpa otherwise.
"""
from __future__ import annotations

import itertools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from math import ceil
from typing import Callable, Mapping, Optional, Sequence

TOKEN_BUDGET = 32768  # padded tokens per forward pass (batch rows x longest prompt)
BLOCK_SIZE = 256  # tokens per KV-cache block (transformers' default)
# Of the device memory still free once both models are loaded; the rest is the doc stage's activations, the
# allocator's slack and CUDA graphs.
CHUNK_MEMORY_SHARE = 0.5
CPU_ENGINE_BYTES = 2 << 30  # the memory figure off the GPU (transformers would size from all host memory)
# Requests decoded together, and tokens per forward step (prefill pieces + one per decoding request). Paged sdpa
# attends every query to the keys of every running request under a dense mask: its cost grows with the square of
# the batch, so it runs fewer; flash attention's varlen kernels need no mask. Starting points, not GPU-measured:
# `benchmarks/bench_model.py --requests-per-batch` sweeps them.
MAX_REQUESTS = {"flash": 256, "sdpa": 64}
BATCH_TOKENS = {"flash": 8192, "sdpa": 2048}
STOP_TIMEOUT_S = 60.0
LOGGER = logging.getLogger("prox.models.engine")


class GenerationFailed(RuntimeError):
    """A request failed inside generation (an out-of-memory, a dead generation thread): it has no program.
    Raised out of the writer: PyTriton fails the whole batch as INTERNAL, which the client retries in halves
    (refiners/triton_client.py) instead of a document getting a cut program."""


def length_buckets(lengths: Sequence[int], max_rows: int, token_budget: int = TOKEN_BUDGET) -> list[list[int]]:
    """Indices grouped by length (shortest first): at most max_rows per group, rows x longest <= token_budget
    (a single prompt longer than the budget still gets a group of its own)."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    groups: list[list[int]] = []
    for index in order:
        group = groups[-1] if groups else None
        if group and len(group) < max_rows and (len(group) + 1) * lengths[index] <= token_budget:
            group.append(index)
        else:
            groups.append([index])
    return groups


def new_token_budget(prompt_length: int, max_new_tokens: int, context_tokens: int) -> int:
    """New tokens a prompt may get: vLLM 0.4.0 stopped a sequence once it was longer than max_model_len, so the
    last token fed to the model sits at position context - 1 (the one it yields is kept, never fed)."""
    return max(0, min(max_new_tokens, context_tokens + 1 - prompt_length))


# --- attention --------------------------------------------------------------------------------------------
def flash_packages() -> dict[str, bool]:
    from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available, is_kernels_available

    return {"flash_attn_3": is_flash_attn_3_available(), "flash_attn": is_flash_attn_2_available(),
            "kernels": is_kernels_available()}


def choose_attention(device: str, available: Optional[Mapping[str, bool]] = None) -> tuple[str, str]:
    """(attn_implementation, why): flash attention on CUDA where a package provides it, else sdpa (which
    continuous batching runs as paged sdpa, with a dense mask over the running requests)."""
    if not str(device).startswith("cuda"):
        return "sdpa", f"{device} is not a CUDA device"
    available = flash_packages() if available is None else available
    if available.get("flash_attn_3"):
        return "flash_attention_3", "flash-attn-3 is installed"
    if available.get("flash_attn"):
        return "flash_attention_2", "flash-attn is installed"
    if available.get("kernels"):
        return "flash_attention_2", "the kernels package provides flash-attn2 (kernels-community/flash-attn2)"
    return "sdpa", "neither flash-attn nor kernels is installed"


def apply_attention(model, device: str, available: Optional[Mapping[str, bool]] = None) -> str:
    """Switch the loaded model to the chosen attention; one that fails to load falls back to sdpa. Logged."""
    wanted, why = choose_attention(device, available)
    if wanted != "sdpa":
        try:
            model.set_attn_implementation(wanted)
        except Exception as exc:  # a missing kernel, an unsupported GPU: transformers raises several kinds
            LOGGER.warning("attention %s (%s) unavailable, using sdpa: %s", wanted, why, _first_line(exc))
            model.set_attn_implementation("sdpa")
            return "sdpa"
    LOGGER.info("attention: %s (%s)", wanted, why)
    return wanted


def uses_flash(model_config) -> bool:
    return "flash" in str(getattr(model_config, "_attn_implementation", "") or "")


# --- continuous batching: sizing --------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelShape:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int
    dtype_bytes: int

    @classmethod
    def of(cls, config, dtype_bytes: int) -> "ModelShape":
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(config.num_hidden_layers, heads, getattr(config, "num_key_value_heads", None) or heads,
                   head_dim, config.hidden_size, config.vocab_size, dtype_bytes)


def engine_footprint(shape: ModelShape, cache_tokens: int, batch_tokens: int, flash: bool,
                     max_blocks_per_request: int) -> int:
    """Bytes of the paged cache, its index tensors, the attention mask and the larger activation peak, term by
    term as transformers' PagedAttentionMemoryHandler counts them (one attention group: LLaMA's layers)."""
    a, n, m = shape.dtype_bytes, cache_tokens, batch_tokens
    page = shape.kv_heads * shape.head_dim
    io = 2 if flash else 1  # transformers double-buffers its inputs (async batching) only without a mask
    kv_cache = 2 * shape.layers * page * a * n
    indices = io * 8 * (n + m) + io * m * (7 * 4 + 4 + 4 * max_blocks_per_request + 8)
    mask = 0 if flash else io * a * m * (n + m)
    lm_head = m * (shape.hidden * a + shape.vocab * 4)  # hidden states and fp32 logits of every batch token
    attention = m * a * (shape.hidden + shape.heads * shape.head_dim + 2 * page) + 2 * page * a * n
    return kv_cache + indices + mask + max(lm_head, attention)


@dataclass(frozen=True)
class EngineSizing:
    requests_per_batch: int
    num_blocks: int
    max_batch_tokens: int
    max_blocks_per_request: int
    block_size: int
    flash: bool
    footprint_bytes: int
    budget_bytes: int

    def config(self):
        from transformers import ContinuousBatchingConfig

        return ContinuousBatchingConfig(
            block_size=self.block_size, num_blocks=self.num_blocks, max_batch_tokens=self.max_batch_tokens,
            max_requests_per_batch=self.requests_per_batch, max_blocks_per_request=self.max_blocks_per_request,
            max_memory_percent=1.0,  # the budget is ours; transformers still checks the footprint against it
        )

    def describe(self) -> str:
        return (f"{self.requests_per_batch} requests x {self.num_blocks} blocks of {self.block_size} tokens, "
                f"{self.max_batch_tokens} tokens per step, {'flash' if self.flash else 'sdpa with mask'}: "
                f"{self.footprint_bytes / 2**30:.2f} of {self.budget_bytes / 2**30:.2f} GiB")


def continuous_sizing(model_config, memory_bytes: int, share: float = CHUNK_MEMORY_SHARE, *, dtype_bytes: int,
                      flash: bool, request_tokens: int, max_requests: Optional[int] = None,
                      batch_tokens: Optional[int] = None, block_size: int = BLOCK_SIZE) -> EngineSizing:
    """The largest batch (requests first, then tokens per step) whose cache of `request_tokens` per request, mask
    and activations fit `share` of `memory_bytes`; transformers would size it from its first call instead."""
    shape, budget = ModelShape.of(model_config, dtype_bytes), int(memory_bytes * share)
    kind = "flash" if flash else "sdpa"
    blocks_per_request = ceil(request_tokens / block_size)
    # flash's decode fast path needs a block table wide enough for the longest request (even, as transformers).
    decode_blocks = blocks_per_request + 1 + (blocks_per_request + 1) % 2 if flash else 0
    requests = max_requests or MAX_REQUESTS[kind]
    while requests >= 1:
        blocks = requests * blocks_per_request
        tokens = max(batch_tokens or BATCH_TOKENS[kind], requests)
        while tokens >= requests:
            footprint = engine_footprint(shape, blocks * block_size, tokens, flash, decode_blocks)
            if footprint <= budget:
                return EngineSizing(requests, blocks, tokens, decode_blocks, block_size, flash, footprint, budget)
            tokens //= 2
        requests //= 2
    one = engine_footprint(shape, blocks_per_request * block_size, 1, flash, decode_blocks)
    raise MemoryError(f"the chunk engine needs {one / 2**20:.0f} MiB for one request of {request_tokens} tokens; "
                      f"it has {budget / 2**20:.0f} MiB ({share:g} of {memory_bytes / 2**20:.0f} MiB)")


def engine_memory_bytes(device: str) -> int:
    """The memory figure the engine takes its share of: free device memory on CUDA, CPU_ENGINE_BYTES elsewhere."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))[0]
    return CPU_ENGINE_BYTES


# --- continuous batching: results -------------------------------------------------------------------------
def tokens_in_request_order(request_ids: Sequence[str], results: Mapping[str, object]) -> list[list[int]]:
    """Generated tokens of each request id, in the order of `request_ids` (results arrive in completion order);
    a request that failed or never finished raises GenerationFailed."""
    failed = [f"{rid}: {results[rid].error}" for rid in request_ids
              if rid in results and results[rid].error is not None]
    missing = [rid for rid in request_ids if rid not in results]
    if failed or missing:
        first = (failed or [f"{missing[0]}: no result"])[0]
        raise GenerationFailed(f"{len(failed)} of {len(request_ids)} requests failed in generation and "
                               f"{len(missing)} never finished (first: {first})")
    return [list(results[rid].generated_tokens) for rid in request_ids]


def collect_results(manager, request_ids: Sequence[str], poll_s: float = 1.0) -> dict:
    """Finished results of `request_ids`, until all are in or the generation thread is gone."""
    pending, results = set(request_ids), {}
    while pending:
        result = manager.get_result(timeout=poll_s)
        if result is None:
            if not manager.is_running():
                break
            continue
        if result.request_id in pending and result.is_finished():
            results[result.request_id] = result
            pending.discard(result.request_id)
    return results


class ModelRunner:
    """Runs token-id prompts through the model: bucketed forward passes, padded or continuous generation."""

    def __init__(self, model, device: str, pad_id: int, eos_id: int, batch_size: int,
                 token_budget: int = TOKEN_BUDGET, memory_share: float = CHUNK_MEMORY_SHARE,
                 max_requests: Optional[int] = None, memory_bytes: Optional[int] = None):
        self.model, self.device, self.pad_id, self.eos_id = model, device, pad_id, eos_id
        self.batch_size, self.token_budget = batch_size, token_budget
        self.context_tokens = model.config.max_position_embeddings
        self.memory_share, self.max_requests, self.memory_bytes = memory_share, max_requests, memory_bytes
        self.sizing: Optional[EngineSizing] = None
        self._request_ids = itertools.count()
        self._stream_lock = threading.Lock()  # one caller at a time in the shared generation stream

    def bucketed(self, prompts: Sequence[list[int]], run_batch: Callable[[list[list[int]]], list]) -> list:
        results: list = [None] * len(prompts)
        for group in length_buckets([len(p) for p in prompts], self.batch_size, self.token_budget):
            for index, result in zip(group, run_batch([prompts[i] for i in group])):
                results[index] = result
        return results

    def left_padded(self, prompts: list[list[int]]):
        import torch

        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=self.device)
        return input_ids, mask

    def next_token_logits(self, prompts: list[list[int]]):
        """[len(prompts), vocab] float logits of the position after each prompt (one batch)."""
        import torch

        input_ids, mask = self.left_padded(prompts)
        with torch.inference_mode():
            # Left padding: positions must count real tokens only, as generate() does.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            output = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            return output.logits[:, -1, :].float()

    def budgets(self, prompts: Sequence[list[int]], max_new_tokens: int) -> list[int]:
        return [new_token_budget(len(prompt), max_new_tokens, self.context_tokens) for prompt in prompts]

    def generate_padded(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy new tokens of one batch of prompts, each cut before its first EOS and at its context budget."""
        import torch

        budgets = self.budgets(prompts, max_new_tokens)
        input_ids, mask = self.left_padded(prompts)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max(1, max(budgets)), do_sample=False,
                eos_token_id=self.eos_id, pad_token_id=self.pad_id,
            )
        rows = output[:, input_ids.shape[1]:].tolist()
        return [self._until_eos(row[:budget]) for row, budget in zip(rows, budgets)]

    # --- continuous batching ----------------------------------------------------------------------------
    def size_continuous(self, max_new_tokens: int) -> EngineSizing:
        """The stream's explicit sizing (computed once, logged): every call reuses it, whatever its size."""
        if self.sizing is None:
            memory = self.memory_bytes if self.memory_bytes is not None else engine_memory_bytes(self.device)
            self.sizing = continuous_sizing(
                self.model.config, memory, self.memory_share, dtype_bytes=self.model.dtype.itemsize,
                flash=uses_flash(self.model.config), request_tokens=self.context_tokens + max_new_tokens,
                max_requests=self.max_requests)
            LOGGER.info("continuous batching: %s", self.sizing.describe())
        return self.sizing

    def generate_continuous(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy new tokens with transformers' continuous batching; the stream (paged cache, CUDA graphs) is
        kept between calls, and results are matched to prompts by request id."""
        budgets = self.budgets(prompts, max_new_tokens)
        runnable = [index for index, budget in enumerate(budgets) if budget > 0]
        with self._stream_lock, self._stream(max_new_tokens) as manager:
            request_ids = [self._submit(manager, prompts[i], budgets[i]) for i in runnable]
            tokens = tokens_in_request_order(request_ids, collect_results(manager, request_ids))
        generated: list[list[int]] = [[] for _ in prompts]
        for index, row in zip(runnable, tokens):
            generated[index] = self._until_eos(row)
        return generated

    @contextmanager
    def _stream(self, max_new_tokens: int):
        from transformers import GenerationConfig

        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_id,
                                  pad_token_id=self.pad_id)
        try:
            with self.model.continuous_batching_context_manager(
                generation_config=config, continuous_batching_config=self.size_continuous(max_new_tokens).config(),
                persistent_manager=True, block=True, timeout=STOP_TIMEOUT_S,
            ) as manager:
                yield manager
        except BaseException:
            # A stream that failed (its thread died, its cache ran out) is rebuilt at the next call, never reused.
            self.model.destroy_cached_continuous_batching_manager()
            raise

    def _submit(self, manager, prompt: list[int], budget: int) -> str:
        request_id = f"prox-{next(self._request_ids)}"
        if manager.add_request(input_ids=prompt, request_id=request_id, max_new_tokens=budget,
                               eos_token_id=self.eos_id) is None:
            raise GenerationFailed("the generation stream refused a request (it is stopping or has failed)")
        return request_id

    def _until_eos(self, tokens: list[int]) -> list[int]:
        return tokens[:tokens.index(self.eos_id)] if self.eos_id in tokens else tokens


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
