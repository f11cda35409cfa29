"""The model engine of the `hf` backend: token-id prompts in, logits or greedy new tokens out.

Only torch and transformers (imported lazily), so the benchmark runs it on a bare GPU machine.
- forward passes: prompts grouped by length under a token budget (little padding), left-padded, only the
  last position's logits computed;
- generation: transformers' continuous batching (paged KV cache, one stream over every prompt) or, where that
  does not pay (CPU), padded generate() over the same length groups; greedy, each cut before its first EOS.
"""
from __future__ import annotations

import inspect
from typing import Callable, Sequence

TOKEN_BUDGET = 32768  # padded tokens per forward pass (batch rows x longest prompt)


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


class ModelRunner:
    """Runs token-id prompts through the model: bucketed forward passes, padded or continuous generation."""

    def __init__(self, model, device: str, pad_id: int, eos_id: int, batch_size: int,
                 token_budget: int = TOKEN_BUDGET):
        self.model, self.device, self.pad_id, self.eos_id = model, device, pad_id, eos_id
        self.batch_size, self.token_budget = batch_size, token_budget

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

    def generate_padded(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy new tokens of one batch of prompts, each cut before its first EOS."""
        import torch

        input_ids, mask = self.left_padded(prompts)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=self.eos_id, pad_token_id=self.pad_id,
            )
        return [self._until_eos(row) for row in output[:, input_ids.shape[1]:].tolist()]

    def generate_continuous(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Greedy new tokens with transformers' continuous batching (paged KV cache); the manager is kept."""
        from transformers import GenerationConfig

        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_id,
                                  pad_token_id=self.pad_id)
        options = {"progress_bar": False}
        if not str(self.device).startswith("cuda"):
            # Off the GPU transformers sizes the paged cache from free host memory (or from nothing, without
            # psutil): size it for these prompts instead, and build it per call.
            options["continuous_batching_config"] = _cpu_cache_config(prompts, max_new_tokens)
        elif "persistent_manager" in inspect.signature(self.model.generate_batch).parameters:
            options["persistent_manager"] = True  # keep the paged cache (and CUDA graphs) between calls
        outputs = self.model.generate_batch(inputs=list(prompts), generation_config=config, **options)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"continuous batching returned {len(outputs)} of {len(prompts)} results")
        return [self._until_eos(list(output.generated_tokens)) for output in outputs.values()]

    def _until_eos(self, tokens: list[int]) -> list[int]:
        return tokens[:tokens.index(self.eos_id)] if self.eos_id in tokens else tokens


def _cpu_cache_config(prompts: list[list[int]], max_new_tokens: int, block_size: int = 256):
    """A paged KV cache just large enough for every prompt plus its new tokens."""
    from transformers import ContinuousBatchingConfig

    blocks = sum(-(-(len(prompt) + max_new_tokens) // block_size) for prompt in prompts) + 1
    return ContinuousBatchingConfig(block_size=block_size, num_blocks=blocks,
                                    max_batch_tokens=min(4096, sum(len(p) for p in prompts) + len(prompts)))

