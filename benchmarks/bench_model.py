"""Throughput of the `hf` refining path on a random-init model of the released ProX refiners' shape.

In-process only (torch + transformers; no pytriton/tritonclient import), so it runs on a bare GPU box:
    python benchmarks/bench_model.py --device cuda --dtype bfloat16 --docs 256 --batch-size 32 \
        --doc-tokens 2000 --chunk-tokens 1500 --new-tokens 256
CPU defaults are tiny (about 2 minutes on 2 cores). Prompts are random token ids of the given lengths:
doc level = one forward pass (logits decoding), chunk level = greedy generation of --new-tokens tokens
(no EOS token, so every chunk generates the full budget, the worst case). Baseline for the ratio:
batch size 1 measured in the same run. Writes JSON + Markdown to benchmarks/results/.

--via-triton: the same numbers through `prox model-server --doc-backend hf --chunk-backend hf` and
`TritonRefinerClient`, against the same writers called in-process in the same run (the ratio is Triton's
overhead). A random-init model of `--shape` is saved with an offline word-level tokenizer whose every id
decodes and whose EOS id is outside the model's vocabulary (every chunk generates the full 256 tokens, the
server's fixed budget; --new-tokens does not apply). Prompts are real prompt templates around synthetic
words sized to --doc-tokens / --chunk-tokens (one chunk per document). Tiny on CPU by default:
    python benchmarks/bench_model.py --via-triton                      # shape tiny, cpu
    python benchmarks/bench_model.py --via-triton --shape released --device cuda --docs 256 --batch-size 16 \
        --doc-tokens 2000 --chunk-tokens 1500
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

RELEASED_SHAPE = dict(hidden_size=1280, intermediate_size=2048, num_hidden_layers=24, num_attention_heads=16,
                      num_key_value_heads=1, vocab_size=32000)
TINY_SHAPE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, vocab_size=32000)
SHAPES = {"released": RELEASED_SHAPE, "tiny": TINY_SHAPE}
RESULTS = Path(__file__).resolve().parent / "results"
WORDS_PER_LINE = 10


class _IdsTokenizer:
    """Just what prox.models.hf._Runner needs when prompts are already token ids."""

    pad_token_id, eos_token_id = 0, None  # no EOS: every chunk generates its full budget

    def batch_decode(self, rows, skip_special_tokens=True):
        return [" ".join(map(str, row.tolist())) for row in rows]


def build_model(device: str, dtype: str, max_positions: int, shape: dict = RELEASED_SHAPE):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, max_position_embeddings=max_positions, bos_token_id=1, eos_token_id=None)
    return LlamaForCausalLM(config).to(device=device, dtype=getattr(torch, dtype)).eval()


# --- --via-triton: a saved model + tokenizer, the model server, the client -------------------
PROMPT_PIECES = ["[", "]", "[/", "INST", "<<", "<</", "SYS", ">>", "doc", "drop_doc", "keep_doc", "keep_chunk", "()",
                 "(", ")", ",", "=", "remove_lines", "normalize", "line_start", "line_end", ".", "You", "are", "a",
                 "helpful", "respectful", "and", "honest", "assistant"]


def word_level_tokenizer(vocab_size: int):
    """Offline tokenizer: one id per whitespace/punctuation piece; ids 0..vocab_size-1 all decode to a word.

    EOS gets id vocab_size, which the model cannot emit: generation always runs its full budget.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "<s>", "<pad>"] + PROMPT_PIECES + [f"{n:03d}" for n in range(1000)]
    pieces += [f"w{n}" for n in range(vocab_size - len(pieces))] + ["</s>"]
    tokenizer = Tokenizer(models.WordLevel({piece: i for i, piece in enumerate(pieces)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def save_random_model(directory: Path, shape: dict, max_positions: int) -> Path:
    tokenizer = word_level_tokenizer(shape["vocab_size"])
    model = build_model("cpu", "float32", max_positions, shape)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def synthetic_text(rng, prompt_tokens: int, overhead: int, tokens_per_line: int) -> str:
    lines = max(1, (prompt_tokens - overhead) // tokens_per_line)
    return "\n".join(" ".join(f"w{rng.randrange(30000)}" for _ in range(WORDS_PER_LINE)) for _ in range(lines))


def level_texts(args, tokenizer) -> dict[str, tuple[list[str], list[int]]]:
    """Per level: texts sized to the requested prompt length, and their prompt lengths in tokens."""
    import random

    from prox.models.prompts import Chunk, chunk_prompt_ids, doc_prompt_ids, split_chunks

    rng = random.Random(0)
    doc_overhead = len(doc_prompt_ids(tokenizer, ""))
    chunk_overhead = len(chunk_prompt_ids(tokenizer, Chunk(0, 0, "")))
    docs = [synthetic_text(rng, args.doc_tokens, doc_overhead, WORDS_PER_LINE) for _ in range(args.docs)]
    chunks = [synthetic_text(rng, args.chunk_tokens, chunk_overhead, WORDS_PER_LINE + 3) for _ in range(args.docs)]
    chunk_lengths = []
    for text in chunks:
        (only,) = split_chunks(tokenizer, text, args.chunk_tokens)  # one chunk per document, as sized
        chunk_lengths.append(len(chunk_prompt_ids(tokenizer, only)))
    return {"doc": (docs, [len(doc_prompt_ids(tokenizer, t)) for t in docs]), "chunk": (chunks, chunk_lengths)}


def measure_texts(write, texts: list[str], lengths: list[int], batch_size: int, generated_per_doc: int) -> dict:
    """As `measure`, for writers of texts; tokens = real prompt lengths + generated tokens."""
    result = measure(write, texts, batch_size, generated_per_doc)
    tokens = sum(lengths) + generated_per_doc * len(texts)
    result["tokens_per_s"] = round(tokens / result["seconds"], 1)
    return result


def run_in_process(args, model_dir: Path, texts) -> dict:
    from prox.models.hf import CHUNK_NEW_TOKENS, HFChunkWriter, HFDocWriter

    # The writers are loaded once; each run below hands them batches of its own size.
    doc = HFDocWriter(str(model_dir), device=args.device, batch_size=args.batch_size)
    chunk = HFChunkWriter(str(model_dir), device=args.device, batch_size=args.batch_size,
                          chunk_tokens=args.chunk_tokens)
    doc.write(texts["doc"][0][:1])  # warm-up
    results = {}
    for batch_size in sorted({1, args.batch_size}):
        results[f"doc_bs{batch_size}"] = measure_texts(doc.write, *texts["doc"], batch_size, 0)
        results[f"chunk_bs{batch_size}"] = measure_texts(chunk.write, *texts["chunk"], batch_size, CHUNK_NEW_TOKENS)
    return results


def run_via_triton(args, model_dir: Path, texts, logs: Path) -> dict:
    import asyncio

    from prox.models.hf import CHUNK_NEW_TOKENS

    import benchtools

    process, url = benchtools.start_model_server(
        logs / "model-server.log", "--doc-backend", "hf", "--doc-model", str(model_dir), "--chunk-backend", "hf",
        "--chunk-model", str(model_dir), "--device", args.device, "--max-batch-size", str(args.batch_size),
        "--chunk-tokens", str(args.chunk_tokens))
    try:
        return asyncio.run(_measure_client(args, url, texts, CHUNK_NEW_TOKENS))
    finally:
        process.terminate()
        process.wait(timeout=60)


async def _measure_client(args, url: str, texts, new_tokens: int) -> dict:
    import asyncio

    from prox.models.client import TritonRefinerClient

    results = {}
    for batch_size in sorted({1, args.batch_size}):
        async with TritonRefinerClient(url=url, concurrency=1, request_timeout_s=3600,
                                       max_batch_size=batch_size) as client:
            await client.wait_ready(timeout_s=600)
            loop = asyncio.get_running_loop()

            def call(method):
                # measure() is synchronous; each batch is one awaited request, run from a worker thread.
                return lambda batch: asyncio.run_coroutine_threadsafe(method(batch), loop).result()

            await client.doc_programs(texts["doc"][0][:1])  # warm-up
            results[f"doc_bs{batch_size}"] = await asyncio.to_thread(
                measure_texts, call(client.doc_programs), *texts["doc"], batch_size, 0)
            results[f"chunk_bs{batch_size}"] = await asyncio.to_thread(
                measure_texts, call(client.chunk_programs), *texts["chunk"], batch_size, new_tokens)
    return results


def run_triton_comparison(args) -> dict:
    import tempfile

    from transformers import AutoTokenizer

    shape = SHAPES[args.shape]
    with tempfile.TemporaryDirectory(prefix="prox-bench-model-") as tmp:
        model_dir = save_random_model(Path(tmp, "model"), shape, max(args.doc_tokens, args.chunk_tokens) + 512)
        texts = level_texts(args, AutoTokenizer.from_pretrained(model_dir, local_files_only=True))
        in_process = run_in_process(args, model_dir, texts)
        via_triton = run_via_triton(args, model_dir, texts, Path(tmp))
    ratios = {key: round(in_process[key]["documents_per_s"] / via_triton[key]["documents_per_s"], 3)
              for key in in_process}
    return {"shape": shape, "in_process": in_process, "via_triton": via_triton,
            "in_process_over_triton_docs_per_s": ratios}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(run_batch, prompts: list[list[int]], batch_size: int, generated_per_doc: int) -> dict:
    latencies = []
    started = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch_started = time.perf_counter()
        run_batch(prompts[start:start + batch_size])
        latencies.append(time.perf_counter() - batch_started)
    elapsed = time.perf_counter() - started
    tokens = sum(len(p) for p in prompts) + generated_per_doc * len(prompts)
    return {
        "batch_size": batch_size, "documents": len(prompts), "seconds": round(elapsed, 3),
        "documents_per_s": round(len(prompts) / elapsed, 3), "tokens_per_s": round(tokens / elapsed, 1),
        "batch_latency_p50_s": round(percentile(latencies, 0.5), 3),
        "batch_latency_p99_s": round(percentile(latencies, 0.99), 3),
    }


def run(args) -> dict:
    import random

    import torch

    from prox.models.hf import _Runner

    model = build_model(args.device, args.dtype, args.doc_tokens + args.chunk_tokens + args.new_tokens)
    rng = random.Random(0)

    def prompts(length: int) -> list[list[int]]:
        return [[1] + [rng.randrange(3, 32000) for _ in range(length - 1)] for _ in range(args.docs)]

    results = {}
    for batch_size in sorted({1, args.batch_size}):
        runner = _Runner(model, _IdsTokenizer(), args.device, batch_size)
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        doc_prompts, chunk_prompts = prompts(args.doc_tokens), prompts(args.chunk_tokens)
        runner.next_token_logits(doc_prompts[:1]); sync()  # warm-up
        results[f"doc_bs{batch_size}"] = measure(lambda b: (runner.next_token_logits(b), sync()), doc_prompts, batch_size, 0)
        results[f"chunk_bs{batch_size}"] = measure(
            lambda b: runner.generate(b, args.new_tokens), chunk_prompts, batch_size, args.new_tokens
        )
    for level in ("doc", "chunk"):
        base, best = results[f"{level}_bs1"], results[f"{level}_bs{args.batch_size}"]
        results[f"{level}_speedup_vs_bs1"] = round(best["documents_per_s"] / base["documents_per_s"], 2)
    return results


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="bfloat16 on GPU")
    parser.add_argument("--docs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--doc-tokens", type=int, default=256, help="2000 for the released setting")
    parser.add_argument("--chunk-tokens", type=int, default=128, help="1500 for the released setting")
    parser.add_argument("--new-tokens", type=int, default=8, help="256 for the released setting")
    parser.add_argument("--name", default=None, help="results file stem (default model_cpu / model_triton_cpu)")
    parser.add_argument("--via-triton", action="store_true", help="through prox model-server + TritonRefinerClient")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None, help="--via-triton only (default tiny)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.via_triton:
        args.name = args.name or f"model_triton_{args.device.split(':')[0]}"
        args.shape = args.shape or "tiny"
        results = {"settings": vars(args), "device": device_name(args.device), **run_triton_comparison(args)}
        text = triton_markdown(results)
    else:
        args.name = args.name or "model_cpu"
        if args.shape not in (None, "released"):
            parser.error("without --via-triton the model is always the released shape")
        results = {"settings": vars(args), "device": device_name(args.device), "shape": RELEASED_SHAPE, **run(args)}
        text = markdown(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


def markdown(results: dict) -> str:
    rows = [k for k in results if k.startswith(("doc_bs", "chunk_bs"))]
    lines = [f"# Model throughput ({results['device']})", "", f"settings: `{json.dumps(results['settings'])}`", "",
             "| run | batch | docs/s | tokens/s | p50 batch s | p99 batch s |", "|---|---|---|---|---|---|"]
    for key in rows:
        r = results[key]
        lines.append(f"| {key} | {r['batch_size']} | {r['documents_per_s']} | {r['tokens_per_s']} | "
                     f"{r['batch_latency_p50_s']} | {r['batch_latency_p99_s']} |")
    lines += ["", f"speed-up of batching vs batch 1 (same run): doc {results['doc_speedup_vs_bs1']}x, "
              f"chunk {results['chunk_speedup_vs_bs1']}x", ""]
    return "\n".join(lines)


def triton_markdown(results: dict) -> str:
    lines = [f"# Model throughput through Triton vs in-process ({results['device']})", "",
             f"settings: `{json.dumps(results['settings'])}`; shape `{json.dumps(results['shape'])}`", "",
             "| run | batch | in-process docs/s | via Triton docs/s | in-process / Triton | via Triton tokens/s | "
             "via Triton p50 batch s | via Triton p99 batch s |", "|---|---|---|---|---|---|---|---|"]
    for key, ratio in results["in_process_over_triton_docs_per_s"].items():
        local, remote = results["in_process"][key], results["via_triton"][key]
        lines.append(f"| {key} | {remote['batch_size']} | {local['documents_per_s']} | {remote['documents_per_s']} | "
                     f"{ratio} | {remote['tokens_per_s']} | {remote['batch_latency_p50_s']} | "
                     f"{remote['batch_latency_p99_s']} |")
    return "\n".join(lines + [""])


if __name__ == "__main__":
    main()
