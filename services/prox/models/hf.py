"""The `hf` backend: the released ProX refining models (LLaMA causal LMs) run with transformers.

Prompts come from `prompts.PromptBuilder` (token-identical to the original ProX inference by default).
Doc level: one forward pass per document, length-bucketed under a token budget (little padding), only the last
position's logits computed; keep_prob = softmax over the first tokens of drop_doc()/keep_doc().
Chunk level: greedy decoding, at most 256 new tokens and never past the context, stop at EOS; on CUDA with
transformers' continuous batching (paged KV cache sized from the model's shape, requests of every document in one
stream, flash attention where installed), on CPU with length-bucketed padded generate(). A chunk longer than the
model's context is not run: its program is "" (as vLLM 0.4.0 ignored it). A request that fails inside generation
raises `GenerationFailed` out of `write`, so its batch fails and is retried: no document gets a cut program.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Optional, Sequence

from prometheus_client import Counter
from prox_proto import ModelInfo

from .backends import ChunkDecision, DocDecision
from .engine import TOKEN_BUDGET, ModelRunner, apply_attention
from .prompts import CHUNK_MAX_TOKENS, DEFAULT_FORMAT, DOC_MAX_TOKENS, ChunkPrompt, load_prompt_builder
from .tokenizer import TokenizerLoadError

KEEP_PROGRAM = "keep_doc()"
DROP_PROGRAM = "drop_doc()"
DOC_DECODES = ("logits", "generate")
CHUNK_ENGINES = ("auto", "continuous", "padded")
DOC_GENERATE_TOKENS = 16
CHUNK_NEW_TOKENS = 256
LOGGER = logging.getLogger("prox.models.hf")
CHUNKS_NOT_SENT = Counter("prox_model_chunks_not_sent_total",
                          "Chunk prompts longer than the model's context, not run (no edits come from them)")


class ModelLoadError(RuntimeError):
    """The model or tokenizer cannot be loaded from the given path (startup error, one line)."""


def load_model(model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None):
    import torch
    from transformers import AutoModelForCausalLM

    path = _existing_model_dir(model_path)
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
    except Exception as exc:  # transformers raises OSError/ValueError/... depending on what is missing
        raise ModelLoadError(f"cannot load a causal LM from {path}: {_first_line(exc)}") from exc
    return model.to(device).eval()


def load_prompts(model_path: Optional[str], prompt_format: str, chunk_tokens: int = CHUNK_MAX_TOKENS,
                 doc_max_tokens: int = DOC_MAX_TOKENS):
    try:
        return load_prompt_builder(_existing_model_dir(model_path), prompt_format, chunk_tokens, doc_max_tokens)
    except TokenizerLoadError as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {model_path}: {_first_line(exc)}") from exc


def load_runner(model_path: Optional[str], tokenizer, device: str, dtype: Optional[str], batch_size: int,
                token_budget: int) -> ModelRunner:
    model = load_model(model_path, device, dtype)
    return ModelRunner(model, device, tokenizer.pad_token_id, tokenizer.eos_token_id, batch_size, token_budget)


def _existing_model_dir(model_path: Optional[str]) -> str:
    if not model_path:
        raise ModelLoadError("the hf backend needs a model path (a directory with config.json and tokenizer files)")
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


class HFDocWriter:
    def __init__(
        self, model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None,
        doc_prompt: str = DEFAULT_FORMAT, doc_decode: str = "logits", keep_threshold: float = 0.5,
        batch_size: int = 8, max_prompt_tokens: int = DOC_MAX_TOKENS, token_budget: int = TOKEN_BUDGET,
        **_ignored,
    ):
        if doc_decode not in DOC_DECODES:
            raise ValueError(f"unknown doc decode {doc_decode!r}; choose one of {DOC_DECODES}")
        self.prompts = load_prompts(model_path, doc_prompt, doc_max_tokens=max_prompt_tokens)
        self.tokenizer = self.prompts.tokenizer
        self.runner = load_runner(model_path, self.tokenizer, device, dtype, batch_size, token_budget)
        self.info = model_info(model_path, "doc")
        self.doc_decode, self.keep_threshold = doc_decode, keep_threshold
        self.drop_token, self.keep_token = self._first_token(DROP_PROGRAM), self._first_token(KEEP_PROGRAM)
        if self.drop_token == self.keep_token:
            raise ModelLoadError("drop_doc() and keep_doc() start with the same token: logits decoding impossible")

    def _first_token(self, program: str) -> int:
        return self.tokenizer.slow_encode(program)[0]

    def write(self, texts: Sequence[str]) -> list[DocDecision]:
        prompts = [self.prompts.doc_ids(text) for text in texts]
        decide = self._decide_by_logits if self.doc_decode == "logits" else self._decide_by_generation
        return self.runner.bucketed(prompts, decide)

    def _decide_by_logits(self, prompts: list[list[int]]) -> list[DocDecision]:
        import torch

        logits = self.runner.next_token_logits(prompts)[:, [self.drop_token, self.keep_token]]
        keep_probs = torch.softmax(logits, dim=-1)[:, 1].tolist()
        return [DocDecision(self._program_for(p), p) for p in keep_probs]

    def _program_for(self, keep_prob: float) -> str:
        return KEEP_PROGRAM if keep_prob >= self.keep_threshold else DROP_PROGRAM

    def _decide_by_generation(self, prompts: list[list[int]]) -> list[DocDecision]:
        programs = [self.tokenizer.decode(tokens).strip() for tokens in
                    self.runner.generate_padded(prompts, DOC_GENERATE_TOKENS)]
        return [DocDecision(program, 0.0 if "drop_doc" in program else 1.0) for program in programs]


class HFChunkWriter:
    def __init__(
        self, model_path: Optional[str], device: str = "cpu", dtype: Optional[str] = None,
        batch_size: int = 8, chunk_tokens: int = CHUNK_MAX_TOKENS, max_new_tokens: int = CHUNK_NEW_TOKENS,
        chunk_engine: str = "auto", token_budget: int = TOKEN_BUDGET, **_ignored,
    ):
        if chunk_engine not in CHUNK_ENGINES:
            raise ValueError(f"unknown chunk engine {chunk_engine!r}; choose one of {CHUNK_ENGINES}")
        self.prompts = load_prompts(model_path, DEFAULT_FORMAT, chunk_tokens)
        self.tokenizer = self.prompts.tokenizer
        self.runner = load_runner(model_path, self.tokenizer, device, dtype, batch_size, token_budget)
        self.info = model_info(model_path, "chunk")
        self.max_new_tokens = max_new_tokens
        self.continuous = chunk_engine == "continuous" or (chunk_engine == "auto" and device.startswith("cuda"))
        if self.continuous:
            self._prepare_stream(device)
        self.chunks_not_sent = 0  # chunk prompts longer than the model's context (never run)

    def _prepare_stream(self, device: str) -> None:
        """Attention and cache sizing of the continuous engine, chosen and logged at start."""
        apply_attention(self.runner.model, device)
        try:
            self.runner.size_continuous(self.max_new_tokens)
        except MemoryError as exc:
            raise ModelLoadError(str(exc)) from exc

    def write(self, texts: Sequence[str]) -> list[ChunkDecision]:
        prompts_per_doc = [self.prompts.chunk_prompts(text) for text in texts]
        sent = [prompt.ids for prompts in prompts_per_doc for prompt in prompts if prompt.sent]
        programs = iter([self.tokenizer.decode(tokens).strip(" ") for tokens in self.generate(sent)])
        self._count_not_sent(sum(len(p) for p in prompts_per_doc) - len(sent))
        return [_joined(prompts, [next(programs) if p.sent else "" for p in prompts]) for prompts in prompts_per_doc]

    def generate(self, prompts: list[list[int]]) -> list[list[int]]:
        if not prompts:
            return []
        if self.continuous:
            return self.runner.generate_continuous(prompts, self.max_new_tokens)
        return self.runner.bucketed(prompts, lambda batch: self.runner.generate_padded(batch, self.max_new_tokens))

    def _count_not_sent(self, count: int) -> None:
        if count:
            self.chunks_not_sent += count
            CHUNKS_NOT_SENT.inc(count)
            LOGGER.warning("%d chunk prompt(s) longer than the model's context (%d tokens) not sent (%d in all)",
                           count, self.prompts.context_tokens, self.chunks_not_sent)


def _joined(prompts: list[ChunkPrompt], programs: list[str]) -> ChunkDecision:
    # Lines carry their document-wide number in the prompt, so chunk programs already use global numbers.
    return ChunkDecision("\n".join(programs), [(prompt.first_line, prompt.last_line) for prompt in prompts])
