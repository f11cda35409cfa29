"""A seeded tiny LLaMA and SentencePiece tokenizer, built and trained in the test to emit known programs.

The tokenizer is trained with sentencepiece (identity normalisation, like Llama-2's) and saved as the released
model folders ship it: `tokenizer.model`, `tokenizer_config.json`, `special_tokens_map.json`, no
`tokenizer.json`. The model memorises prompt -> program pairs built with `prox.models.prompts` (the backend's
own prompts), so a test can assert the exact programs that come back through Triton.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Mapping, Sequence

from prox.models.prompts import SYSTEM_PROMPT, PromptBuilder
from prox.models.tokenizer import ProxTokenizer, load_prox_tokenizer

SEED = 0
VOCAB_SIZE = 512
PROGRAM_VOCABULARY = [
    "keep_doc()", "drop_doc()", "keep_chunk()", "remove_lines(line_start=0, line_end=1)",
    'normalize(source_str="a", target_str="b")', "[INST] <<SYS>> <</SYS>> [/INST] [doc] [/doc]", SYSTEM_PROMPT,
]
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_sentencepiece(directory: Path, corpus: Sequence[str]) -> Path:
    """A BPE tokenizer.model with Llama-2's layout: <unk>=0, <s>=1, </s>=2, byte fallback, split digits."""
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    sentences = [line for text in list(corpus) + PROGRAM_VOCABULARY for line in text.split("\n") if line] * 20
    prefix = directory / "spm"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(prefix), vocab_size=VOCAB_SIZE, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        split_digits=True, minloglevel=2, seed_sentencepiece_size=100000, num_threads=1,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
    )
    return Path(f"{prefix}.model")


def save_hub_layout_tokenizer(model_file: Path, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_file, directory / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": False, "add_bos_token": True, "add_eos_token": False,
              **SPECIAL}
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(SPECIAL, indent=2))


def train_tokenizer(directory: Path, corpus: Sequence[str]) -> ProxTokenizer:
    """Train a tokenizer on `corpus`, save it in the hub layout in `directory`, load it as the backend does."""
    save_hub_layout_tokenizer(train_sentencepiece(directory / "spm", corpus), directory)
    return load_prox_tokenizer(directory)


def training_pairs(tokenizer, doc_programs: Mapping[str, str], chunk_programs: Mapping[str, Sequence[str]],
                   chunk_tokens: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) for every doc and every chunk; chunk programs are listed per chunk."""
    prompts = PromptBuilder(tokenizer, chunk_tokens=chunk_tokens)

    def target(program: str) -> list[int]:
        return tokenizer.slow_encode(program) + [tokenizer.eos_token_id]

    pairs = [(prompts.doc_ids(text), target(program)) for text, program in doc_programs.items()]
    for text, programs in chunk_programs.items():
        chunks = prompts.chunk_prompts(text)
        if len(chunks) != len(programs):
            raise ValueError(f"{len(chunks)} chunks but {len(programs)} programs for {text[:40]!r}")
        pairs += [(chunk.ids, target(p)) for chunk, p in zip(chunks, programs)]
    return pairs


def tiny_llama(vocab_size: int, max_positions: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, max_position_embeddings=max_positions, bos_token_id=1, eos_token_id=2,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def train(model, pairs: list[tuple[list[int], list[int]]], steps: int = 300, lr: float = 3e-3) -> float:
    """Full-batch AdamW on the targets only; stops early once every target is memorised."""
    import torch

    random.seed(SEED)
    width = max(len(p) + len(t) for p, t in pairs)
    input_ids = torch.tensor([p + t + [0] * (width - len(p) - len(t)) for p, t in pairs])
    labels = torch.tensor([[-100] * len(p) + t + [-100] * (width - len(p) - len(t)) for p, t in pairs])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(p) + len(t) for p, t in pairs])[:, None]).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(float("inf"))
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    model.eval()
    return loss.item()


def build_tiny_llama(directory: Path, doc_programs: Mapping[str, str], chunk_programs: Mapping[str, Sequence[str]],
                     chunk_tokens: int) -> Path:
    """Train tokenizer + model on the given prompt -> program pairs; save both to `directory` (hub layout)."""
    tokenizer = train_tokenizer(directory, list(doc_programs) + list(chunk_programs))
    pairs = training_pairs(tokenizer, doc_programs, chunk_programs, chunk_tokens)
    model = tiny_llama(len(tokenizer), max_positions=max(len(p) + len(t) for p, t in pairs) + 64)
    final_loss = train(model, pairs)
    if final_loss > 0.05:
        raise RuntimeError(f"tiny LLaMA did not memorise its programs (loss {final_loss:.3f})")
    model.save_pretrained(directory)
    model.generation_config.save_pretrained(directory)
    shutil.rmtree(directory / "spm")
    return directory
