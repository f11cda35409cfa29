"""The `hf` engine on CPU with tiny random LLaMAs: explicit continuous-batching sizing, attention choice, results
matched by request id, failures raised, new tokens capped by the context."""
import random
from types import SimpleNamespace
from unittest import mock

import pytest

from prox.models.engine import (
    BATCH_TOKENS, GenerationFailed, ModelRunner, apply_attention, choose_attention, continuous_sizing,
    new_token_budget, tokens_in_request_order,
)

RELEASED = dict(hidden_size=1280, intermediate_size=2048, num_hidden_layers=24, num_attention_heads=16,
                num_key_value_heads=1, vocab_size=32000, max_position_embeddings=2048)
GIB = 2**30
NO_EOS = 10**6  # an id no model of these tests can emit, so every request runs its full budget


def llama_config(attention: str = "sdpa", **shape):
    from transformers import LlamaConfig

    config = LlamaConfig(**{**RELEASED, **shape})
    config._attn_implementation = attention
    return config


def tiny_model(max_positions: int = 256, seed: int = 0):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = llama_config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=1, vocab_size=128, max_position_embeddings=max_positions)
    return LlamaForCausalLM(config).eval()


def runner_for(model, **options) -> ModelRunner:
    return ModelRunner(model, "cpu", pad_id=0, eos_id=NO_EOS, batch_size=8, **options)


def prompts(count: int, length: int = 8, seed: int = 1) -> list[list[int]]:
    rng = random.Random(seed)
    return [[1] + [rng.randrange(3, 128) for _ in range(length - 1)] for _ in range(count)]


class ForwardCounter:
    def __init__(self, model):
        self.calls = 0
        model.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1


# --- sizing -------------------------------------------------------------------------------------------------
def transformers_footprint(config, sizing, dtype) -> int:
    """transformers' own count of the memory this sizing takes (PagedAttentionMemoryHandler)."""
    from transformers.generation.continuous_batching.cache import PagedAttentionMemoryHandler

    cb_config = sizing.config()
    cb_config.use_async_batching = sizing.flash  # as transformers decides it: with CUDA graphs, i.e. without a mask
    with mock.patch.object(PagedAttentionMemoryHandler, "get_available_memory", lambda self: 0):
        handler = PagedAttentionMemoryHandler(config, cb_config, dtype, ["full_attention"], config.num_hidden_layers)
    return handler.compute_memory_footprint(sizing.max_batch_tokens, sizing.num_blocks)


@pytest.mark.parametrize("attention", ["sdpa", "flash_attention_2"])
def test_the_sizing_fits_its_share_by_transformers_own_count(attention):
    import torch

    config = llama_config(attention)
    sizing = continuous_sizing(config, 78 * GIB, 0.5, dtype_bytes=2, flash=attention != "sdpa", request_tokens=2304)
    assert sizing.num_blocks == sizing.requests_per_batch * 9  # 2,048 + 256 tokens in blocks of 256
    assert sizing.max_batch_tokens >= sizing.requests_per_batch  # every running request decodes in one step
    assert transformers_footprint(config, sizing, torch.bfloat16) == sizing.footprint_bytes <= 39 * GIB


def test_transformers_alone_would_give_the_mask_and_cache_90_percent_of_an_80_gb_card():
    """The sizing today (no explicit config, paged sdpa): ~47 GB of mask and ~22 GB of KV cache on 78.5 GB free."""
    import torch
    from transformers import ContinuousBatchingConfig
    from transformers.generation.continuous_batching.cache import PagedAttentionMemoryHandler
    from transformers.generation.continuous_batching.initialization import resolve_continuous_batching_config

    config = llama_config("paged|sdpa")
    cb_config = resolve_continuous_batching_config(config, ContinuousBatchingConfig(), None, False)
    with mock.patch.object(PagedAttentionMemoryHandler, "get_available_memory", lambda self: int(78.5e9 * 0.9)):
        handler = PagedAttentionMemoryHandler(config, cb_config, torch.bfloat16, ["full_attention"], 24)
        tokens, blocks = handler.infer_max_batch_tokens_and_num_blocks()
    cached = blocks * 256
    assert round(tokens * (cached + tokens) * 2 / 1e9) == 47  # the [M, N + M] bf16 mask
    assert round(2 * 24 * 80 * 2 * cached / 1e9) == 22  # K and V of 24 layers, one head of 80
    ours = continuous_sizing(config, int(78.5e9), 0.5, dtype_bytes=2, flash=False, request_tokens=2304)
    assert ours.footprint_bytes < 3e9


def test_less_memory_means_fewer_requests_and_too_little_is_a_clear_error():
    config = llama_config()
    full = continuous_sizing(config, 78 * GIB, dtype_bytes=2, flash=False, request_tokens=2304)
    small = continuous_sizing(config, GIB // 2, dtype_bytes=2, flash=False, request_tokens=2304)
    assert small.requests_per_batch < full.requests_per_batch and small.footprint_bytes <= small.budget_bytes
    with pytest.raises(MemoryError, match="one request of 2304 tokens"):
        continuous_sizing(config, 2**20, dtype_bytes=2, flash=False, request_tokens=2304)


def test_flash_needs_no_mask_so_it_runs_more_requests_and_tokens_per_step():
    config = llama_config("flash_attention_2")
    flash = continuous_sizing(config, 78 * GIB, dtype_bytes=2, flash=True, request_tokens=2304)
    sdpa = continuous_sizing(llama_config(), 78 * GIB, dtype_bytes=2, flash=False, request_tokens=2304)
    assert flash.requests_per_batch > sdpa.requests_per_batch
    assert (flash.max_batch_tokens, sdpa.max_batch_tokens) == (BATCH_TOKENS["flash"], BATCH_TOKENS["sdpa"])
    assert flash.max_blocks_per_request == 10 and sdpa.max_blocks_per_request == 0  # decode fast path: flash only


def test_the_first_call_no_longer_caps_the_batch():
    """After a first call of 2 prompts, 32 prompts x N new tokens run in about N forward steps, not 16 x N."""
    model = tiny_model()
    runner = runner_for(model)
    runner.generate_continuous(prompts(2), 4)
    counter = ForwardCounter(model)
    new_tokens = 8
    outputs = runner.generate_continuous(prompts(32, seed=2), new_tokens)
    assert [len(tokens) for tokens in outputs] == [new_tokens] * 32
    assert counter.calls <= new_tokens + 1
    assert runner.sizing.requests_per_batch >= 32


# --- attention ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device,available,expected", [
    ("cpu", {"flash_attn_3": True, "flash_attn": True, "kernels": True}, "sdpa"),
    ("cuda", {"flash_attn_3": True, "flash_attn": True, "kernels": True}, "flash_attention_3"),
    ("cuda:1", {"flash_attn_3": False, "flash_attn": True, "kernels": False}, "flash_attention_2"),
    ("cuda", {"flash_attn_3": False, "flash_attn": False, "kernels": True}, "flash_attention_2"),
    ("cuda", {"flash_attn_3": False, "flash_attn": False, "kernels": False}, "sdpa"),
])
def test_attention_is_the_fastest_one_available(device, available, expected):
    assert choose_attention(device, available)[0] == expected


def test_a_flash_attention_that_cannot_load_falls_back_to_sdpa_and_says_so(caplog):
    model = tiny_model()
    with caplog.at_level("WARNING", logger="prox.models.engine"):
        chosen = apply_attention(model, "cuda", {"flash_attn": True})  # not installed here: loading it fails
    assert chosen == "sdpa" and model.config._attn_implementation == "sdpa"
    assert "flash_attention_2" in caplog.text and "using sdpa" in caplog.text


# --- results, failures, context -----------------------------------------------------------------------------
def result(request_id: str, tokens: list[int], error=None):
    return SimpleNamespace(request_id=request_id, generated_tokens=tokens, error=error)


def test_results_in_completion_order_are_matched_to_their_requests_by_id():
    request_ids = [f"prox-{i}" for i in range(20)]
    finished = [result(rid, [i, i + 1]) for i, rid in enumerate(request_ids)]
    random.Random(0).shuffle(finished)
    by_completion = {r.request_id: r for r in finished}
    assert tokens_in_request_order(request_ids, by_completion) == [[i, i + 1] for i in range(20)]


def test_a_failed_or_missing_request_raises_instead_of_giving_a_short_program():
    ids = ["a", "b"]
    with pytest.raises(GenerationFailed, match="1 of 2 requests failed.*CUDA out of memory"):
        tokens_in_request_order(ids, {"a": result("a", [5]), "b": result("b", [6], error="CUDA out of memory")})
    with pytest.raises(GenerationFailed, match="1 never finished"):
        tokens_in_request_order(ids, {"a": result("a", [5])})


def test_a_failure_inside_generation_raises_and_the_next_call_runs_on_a_fresh_stream():
    model = tiny_model()
    runner = runner_for(model)
    expected = runner.generate_continuous(prompts(4), 6)
    calls = {"n": 0}

    def fail_third_step(*_):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = model.register_forward_pre_hook(fail_third_step)
    with pytest.raises(GenerationFailed, match="out of memory"):
        runner.generate_continuous(prompts(4), 6)
    hook.remove()
    assert runner.generate_continuous(prompts(4), 6) == expected


def test_new_tokens_stop_at_the_context_as_vllm_did():
    assert new_token_budget(100, 256, 2048) == 256
    assert new_token_budget(1900, 256, 2048) == 149  # the last token fed sits at position 2,047
    assert new_token_budget(2048, 256, 2048) == 1
    assert new_token_budget(2049, 256, 2048) == 0


@pytest.mark.parametrize("engine", ["continuous", "padded"])
def test_a_long_prompt_gets_only_the_new_tokens_its_context_leaves(engine):
    model = tiny_model(max_positions=64)
    runner = runner_for(model)
    batch = [prompts(1, length=60)[0], prompts(1, length=10, seed=3)[0]]
    outputs = (runner.generate_continuous(batch, 16) if engine == "continuous"
               else runner.generate_padded(batch, 16))
    assert [len(tokens) for tokens in outputs] == [5, 16]
