"""The `hf` backend: the released ProX refining models (LLaMA causal LMs) run with transformers.

Doc level decides from one forward pass by default (next-token logits of `drop_doc()` vs `keep_doc()`);
chunk level decodes greedily. Prompts are in `prompts.py`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional, Sequence

from prox_proto import ModelInfo

from .backends import ChunkDecision, DocDecision
from .prompts import CHUNK_MAX_TOKENS, DOC_MAX_TOKENS, Chunk, chunk_prompt_ids, doc_prompt_ids, split_chunks

KEEP_PROGRAM = "keep_doc()"
DROP_PROGRAM = "drop_doc()"
DOC_DECODES = ("logits", "generate")
DOC_GENERATE_TOKENS = 16
CHUNK_NEW_TOKENS = 256


class ModelLoadError(RuntimeError):
    """The model or tokenizer cannot be loaded from the given path (startup error, one line)."""


def load_model_and_tokenizer(model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = _existing_model_dir(model_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError/... depending on what is missing
        raise ModelLoadError(f"cannot load a tokenizer from {path}: {_first_line(exc)}") from exc
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
    except Exception as exc:
        raise ModelLoadError(f"cannot load a causal LM from {path}: {_first_line(exc)}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def _existing_model_dir(model_path: Optional[str]) -> str:
    if not model_path:
        raise ModelLoadError("the hf backend needs a model path (a directory saved with save_pretrained)")
    if not Path(model_path).is_dir():
        raise ModelLoadError(f"model path {model_path} does not exist or is not a directory")
    return model_path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def model_info(model_path: str, level: str) -> ModelInfo:
    config = Path(model_path) / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:12] if config.exists() else "unknown"
    return ModelInfo(name=f"{Path(model_path).name}:{level}", version=digest, backend="hf")


class _Runner:
    """Batches token-id prompts grouped by length (less padding) and runs the model on them."""

    def __init__(self, model, tokenizer, device: str, batch_size: int):
        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, device, batch_size

    def by_length(self, prompts: Sequence[list[int]], run_batch: Callable[[list[list[int]]], list]) -> list:
        order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))
        results: list = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            for index, result in zip(indices, run_batch([prompts[i] for i in indices])):
                results[index] = result
        return results

    def left_padded(self, prompts: list[list[int]]):
        import torch

        width = max(len(ids) for ids in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=self.device)
        return input_ids, mask

    def next_token_logits(self, prompts: list[list[int]]):
        import torch

        input_ids, mask = self.left_padded(prompts)
        with torch.inference_mode():
            # Left padding: positions must count real tokens only, as generate() does.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            return self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1, :].float()

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        import torch

        input_ids, mask = self.left_padded(prompts)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output[:, input_ids.shape[1]:]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


class HFDocWriter:
    def __init__(
        self, model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None,
        doc_prompt: str = "fixed", doc_decode: str = "logits", keep_threshold: float = 0.5,
        batch_size: int = 8, max_prompt_tokens: int = DOC_MAX_TOKENS, **_ignored,
    ):
        if doc_decode not in DOC_DECODES:
            raise ValueError(f"unknown doc decode {doc_decode!r}; choose one of {DOC_DECODES}")
        model, self.tokenizer = load_model_and_tokenizer(model_path, device, dtype)
        self.runner = _Runner(model, self.tokenizer, device, batch_size)
        self.info = model_info(model_path, "doc")
        self.doc_prompt, self.doc_decode, self.keep_threshold = doc_prompt, doc_decode, keep_threshold
        self.max_prompt_tokens = max_prompt_tokens
        self.drop_token, self.keep_token = self._first_token(DROP_PROGRAM), self._first_token(KEEP_PROGRAM)
        if self.drop_token == self.keep_token:
            raise ModelLoadError("drop_doc() and keep_doc() start with the same token: logits decoding impossible")

    def _first_token(self, program: str) -> int:
        return self.tokenizer.encode(program, add_special_tokens=False)[0]

    def write(self, texts: Sequence[str]) -> list[DocDecision]:
        prompts = [doc_prompt_ids(self.tokenizer, text, self.doc_prompt, self.max_prompt_tokens) for text in texts]
        decide = self._decide_by_logits if self.doc_decode == "logits" else self._decide_by_generation
        return self.runner.by_length(prompts, decide)

    def _decide_by_logits(self, prompts: list[list[int]]) -> list[DocDecision]:
        import torch

        logits = self.runner.next_token_logits(prompts)[:, [self.drop_token, self.keep_token]]
        keep_probs = torch.softmax(logits, dim=-1)[:, 1].tolist()
        return [DocDecision(self._program_for(p), p) for p in keep_probs]

    def _program_for(self, keep_prob: float) -> str:
        return KEEP_PROGRAM if keep_prob >= self.keep_threshold else DROP_PROGRAM

    def _decide_by_generation(self, prompts: list[list[int]]) -> list[DocDecision]:
        programs = self.runner.generate(prompts, DOC_GENERATE_TOKENS)
        return [DocDecision(program, 0.0 if "drop_doc" in program else 1.0) for program in programs]


class HFChunkWriter:
    def __init__(
        self, model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None,
        batch_size: int = 8, chunk_tokens: int = CHUNK_MAX_TOKENS, max_new_tokens: int = CHUNK_NEW_TOKENS,
        **_ignored,
    ):
        model, self.tokenizer = load_model_and_tokenizer(model_path, device, dtype)
        self.runner = _Runner(model, self.tokenizer, device, batch_size)
        self.info = model_info(model_path, "chunk")
        self.chunk_tokens, self.max_new_tokens = chunk_tokens, max_new_tokens

    def write(self, texts: Sequence[str]) -> list[ChunkDecision]:
        chunks_per_doc = [split_chunks(self.tokenizer, text, self.chunk_tokens) for text in texts]
        flat: list[Chunk] = [chunk for chunks in chunks_per_doc for chunk in chunks]
        prompts = [chunk_prompt_ids(self.tokenizer, chunk) for chunk in flat]
        programs = iter(self.runner.by_length(prompts, lambda batch: self.runner.generate(batch, self.max_new_tokens)))
        return [_joined(chunks, [next(programs) for _ in chunks]) for chunks in chunks_per_doc]


def _joined(chunks: list[Chunk], programs: list[str]) -> ChunkDecision:
    # Lines carry their document-wide number in the prompt, so chunk programs already use global numbers.
    return ChunkDecision("\n".join(programs), [(chunk.first_line, chunk.last_line) for chunk in chunks])
