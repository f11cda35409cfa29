"""Prompts of the released ProX refining models: the token ids the original ProX inference fed them.

The original (transformers 4.39.1 + vLLM 0.4.0; see `tokenizer.py` for its two encode rules):
- doc stage: the Llama-2 chat template text `"<s>[INST] " + ("<<SYS>>\\n" + system + "\\n<</SYS>>\\n\\n" +
  document).strip() + " [/INST]"`, slow-encoded, right-truncated to `DOC_MAX_TOKENS` ids (which can cut
  " [/INST]": it is what the model saw);
- chunk stage: lines numbered `[000]`, packed greedily so that the line costs (fast-encoded, BOS counted) of a
  chunk add up to at most `CHUNK_MAX_TOKENS`; the user message `"[doc]\\n" + chunk + "\\n[/doc]"` in the same
  template, fast-encoded with BOS (so ids start `[1, 1, 518, ...]`). An empty document has no chunk; a chunk
  prompt longer than the model's context is not sent (vLLM 0.4.0 ignored it) and its program is "".

Formats (`PROMPT_FORMATS`): `original` (the default, token-identical) and `fixed`, which shortens the document
instead so that the doc prompt always ends with " [/INST]" (chunk prompts are the same in both).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
DOC_MAX_TOKENS = 2000
CHUNK_MAX_TOKENS = 1500
CONTEXT_TOKENS = 2048  # max_position_embeddings of the released models
PROMPT_FORMATS = ("original", "fixed")
DEFAULT_FORMAT = "original"


class Chunk(NamedTuple):
    first_line: int
    last_line: int  # inclusive
    text: str  # the numbered lines joined by "\n"


class ChunkPrompt(NamedTuple):
    first_line: int
    last_line: int  # inclusive
    ids: list[int]
    sent: bool  # False: longer than the model's context, so the model never sees it


def chat_prompt(user: str, system: str = SYSTEM_PROMPT) -> str:
    """The Llama-2 chat template (system + one user turn, generation prompt) rendered to text."""
    return "<s>[INST] " + f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}".strip() + " [/INST]"


def number_lines(text: str) -> list[str]:
    return [f"[{index:03d}]{line}" for index, line in enumerate(text.split("\n"))]


def split_chunks(tokenizer, text: str, max_tokens: int = CHUNK_MAX_TOKENS) -> list[Chunk]:
    """Greedy packing as the original: the fast-encoded line costs of a chunk add up to <= max_tokens."""
    if text == "":
        return []
    lines = number_lines(text)
    chunks: list[Chunk] = []
    first, used = 0, 0
    for index, cost in enumerate(map(len, tokenizer.fast_encode_many(lines))):
        if index > first and used + cost > max_tokens:
            chunks.append(_chunk(lines, first, index - 1))
            first, used = index, 0
        used += cost
    chunks.append(_chunk(lines, first, len(lines) - 1))
    return chunks


def _chunk(lines: Sequence[str], first: int, last: int) -> Chunk:
    return Chunk(first, last, "\n".join(lines[first:last + 1]))


def chunk_prompt(chunk_text: str) -> str:
    return chat_prompt(f"[doc]\n{chunk_text}\n[/doc]")


class PromptBuilder:
    """The one place prompts are made: the hf backend and `prox prompts` both use it."""

    def __init__(self, tokenizer, prompt_format: str = DEFAULT_FORMAT, doc_max_tokens: int = DOC_MAX_TOKENS,
                 chunk_tokens: int = CHUNK_MAX_TOKENS, context_tokens: int = CONTEXT_TOKENS):
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"unknown prompt format {prompt_format!r}; choose one of {', '.join(PROMPT_FORMATS)}")
        self.tokenizer, self.prompt_format = tokenizer, prompt_format
        self.doc_max_tokens, self.chunk_tokens, self.context_tokens = doc_max_tokens, chunk_tokens, context_tokens

    def doc_ids(self, text: str) -> list[int]:
        if self.prompt_format == "fixed":
            return self._shortened_doc_ids(text)
        # Only as much of a long page is encoded as the cut keeps: the same ids, a fraction of the work.
        return self.tokenizer.slow_encode_head(chat_prompt(text), self.doc_max_tokens)

    def _shortened_doc_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.slow_encode(chat_prompt(text))
        if len(ids) <= self.doc_max_tokens:
            return ids
        doc_ids = self.tokenizer.slow_encode(text)
        keep = max(0, len(doc_ids) - (len(ids) - self.doc_max_tokens))
        # Re-tokenising at the seams can shift a token or two, so shrink until the rendered prompt fits.
        while True:
            ids = self.tokenizer.slow_encode(chat_prompt(self.tokenizer.decode(doc_ids[:keep])))
            if len(ids) <= self.doc_max_tokens or keep == 0:
                return ids
            keep = max(0, keep - max(1, len(ids) - self.doc_max_tokens))

    def chunk_prompts(self, text: str) -> list[ChunkPrompt]:
        chunks = split_chunks(self.tokenizer, text, self.chunk_tokens)
        encoded = self.tokenizer.fast_encode_many([chunk_prompt(chunk.text) for chunk in chunks])
        return [ChunkPrompt(chunk.first_line, chunk.last_line, ids, len(ids) <= self.context_tokens)
                for chunk, ids in zip(chunks, encoded)]


def load_prompt_builder(model_dir, prompt_format: str = DEFAULT_FORMAT, chunk_tokens: int = CHUNK_MAX_TOKENS,
                        doc_max_tokens: int = DOC_MAX_TOKENS) -> PromptBuilder:
    """The prompts of the model in `model_dir`: its tokenizer files and the context length in its config.json."""
    from .tokenizer import load_prox_tokenizer

    tokenizer = load_prox_tokenizer(model_dir)
    return PromptBuilder(tokenizer, prompt_format, doc_max_tokens, chunk_tokens, model_context_tokens(model_dir))


def model_context_tokens(model_dir) -> int:
    """`max_position_embeddings` of config.json: vLLM's max_model_len, beyond which a prompt was not sent."""
    import json
    from pathlib import Path

    from .tokenizer import TokenizerLoadError

    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerLoadError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    context = config.get("max_position_embeddings", CONTEXT_TOKENS) if isinstance(config, dict) else None
    if not isinstance(context, int) or context <= 0:
        raise TokenizerLoadError(f"{path}: max_position_embeddings is not a positive integer")
    return context
