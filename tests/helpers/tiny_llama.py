"""A seeded tiny LLaMA and SentencePiece tokenizer, built and trained in the test to emit known programs.

The tokenizer is trained with sentencepiece, then wrapped as a transformers `LlamaTokenizer` (vocab and
merges read with the sentencepiece processor: the protobuf-based converter clashes with the installed
protobuf). The model memorises prompt -> program pairs built with `prox.models.prompts`, so a test can
assert the exact programs that come back through Triton.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Mapping, Sequence

from prox.models.prompts import SYSTEM_PROMPT, chunk_prompt_ids, doc_prompt_ids, split_chunks

SEED = 0
VOCAB_SIZE = 512
PROGRAM_VOCABULARY = [
    "keep_doc()", "drop_doc()", "keep_chunk()", "remove_lines(line_start=0, line_end=1)",
    'normalize(source_str="a", target_str="b")', "[INST] <<SYS>> <</SYS>> [/INST] [doc] [/doc]", SYSTEM_PROMPT,
]


def train_tokenizer(directory: Path, corpus: Sequence[str]):
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    sentences = [line for text in list(corpus) + PROGRAM_VOCABULARY for line in text.split("\n") if line] * 20
    prefix = directory / "spm"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(prefix), vocab_size=VOCAB_SIZE, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        split_digits=True, minloglevel=2, seed_sentencepiece_size=100000, num_threads=1,
    )
    processor = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    return LlamaTokenizer(vocab=vocab, merges=_bpe_merges(processor, vocab), legacy=False)


def _bpe_merges(processor, vocab: Mapping[str, int]) -> list[tuple[str, str]]:
    merges = []
    for piece, rank in sorted(vocab.items(), key=lambda item: item[1]):
        if processor.is_control(rank) or processor.is_byte(rank) or processor.is_unknown(rank):
            continue
        pairs = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(pairs, key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
    return merges


def training_pairs(tokenizer, doc_programs: Mapping[str, str], chunk_programs: Mapping[str, Sequence[str]],
                   chunk_tokens: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, target ids) for every doc and every chunk; chunk programs are listed per chunk."""
    def target(program: str) -> list[int]:
        return tokenizer.encode(program, add_special_tokens=False) + [tokenizer.eos_token_id]

    pairs = [(doc_prompt_ids(tokenizer, text), target(program)) for text, program in doc_programs.items()]
    for text, programs in chunk_programs.items():
        chunks = split_chunks(tokenizer, text, chunk_tokens)
        if len(chunks) != len(programs):
            raise ValueError(f"{len(chunks)} chunks but {len(programs)} programs for {text[:40]!r}")
        pairs += [(chunk_prompt_ids(tokenizer, chunk), target(p)) for chunk, p in zip(chunks, programs)]
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
    """Train tokenizer + model on the given prompt -> program pairs and save both to `directory`."""
    tokenizer = train_tokenizer(directory / "spm", list(doc_programs) + list(chunk_programs))
    pairs = training_pairs(tokenizer, doc_programs, chunk_programs, chunk_tokens)
    model = tiny_llama(len(tokenizer), max_positions=max(len(p) + len(t) for p, t in pairs) + 64)
    final_loss = train(model, pairs)
    if final_loss > 0.05:
        raise RuntimeError(f"tiny LLaMA did not memorise its programs (loss {final_loss:.3f})")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
