"""Prompts of the released ProX refining models (Llama-2 chat format, no chat template in their tokenizers).

Doc level: the document is the user message, truncated so the whole prompt fits `DOC_MAX_TOKENS`.
Chunk level: lines numbered `[000]`, packed greedily into chunks of at most `CHUNK_MAX_TOKENS`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
DOC_MAX_TOKENS = 2000
CHUNK_MAX_TOKENS = 1500
DOC_PROMPT_MODES = ("fixed", "original")


class Chunk(NamedTuple):
    first_line: int
    last_line: int  # inclusive
    text: str  # the numbered lines joined by "\n"


def chat_prompt(user: str, system: str = SYSTEM_PROMPT) -> str:
    return f"<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    # The prompt spells out "<s>" itself, so the tokenizer must not add another BOS.
    return list(tokenizer.encode(prompt, add_special_tokens=False))


def doc_prompt_ids(tokenizer, text: str, mode: str = "fixed", max_tokens: int = DOC_MAX_TOKENS) -> list[int]:
    """Token ids of the doc-level prompt: `fixed` truncates the document, `original` cuts the token sequence."""
    if mode == "original":
        return encode_prompt(tokenizer, chat_prompt(text))[:max_tokens]
    if mode != "fixed":
        raise ValueError(f"unknown doc prompt mode {mode!r}; choose one of {DOC_PROMPT_MODES}")
    return _truncated_doc_prompt_ids(tokenizer, text, max_tokens)


def _truncated_doc_prompt_ids(tokenizer, text: str, max_tokens: int) -> list[int]:
    ids = encode_prompt(tokenizer, chat_prompt(text))
    if len(ids) <= max_tokens:
        return ids
    doc_ids = list(tokenizer.encode(text, add_special_tokens=False))
    keep = max(0, len(doc_ids) - (len(ids) - max_tokens))
    # Re-tokenising at the seams can shift a token or two, so shrink until the rendered prompt fits.
    while True:
        ids = encode_prompt(tokenizer, chat_prompt(tokenizer.decode(doc_ids[:keep]).rstrip()))
        if len(ids) <= max_tokens or keep == 0:
            return ids
        keep = max(0, keep - max(1, len(ids) - max_tokens))


def number_lines(text: str) -> list[str]:
    return [f"[{index:03d}]{line}" for index, line in enumerate(text.split("\n"))]


def split_chunks(tokenizer, text: str, max_tokens: int = CHUNK_MAX_TOKENS) -> list[Chunk]:
    """Greedy packing as the original: sum of len(tokenizer.encode(numbered_line)) per chunk <= max_tokens."""
    lines = number_lines(text)
    chunks: list[Chunk] = []
    first, used = 0, 0
    for index, line in enumerate(lines):
        cost = len(tokenizer.encode(line))
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


def chunk_prompt_ids(tokenizer, chunk: Chunk) -> list[int]:
    return encode_prompt(tokenizer, chunk_prompt(chunk.text))
