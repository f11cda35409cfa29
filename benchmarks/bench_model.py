"""Throughput of the `hf` refining path on a random-init model of the released ProX refiners' shape.

In-process only (torch + transformers; no pytriton/tritonclient import), so it runs on a bare GPU box:
    python benchmarks/bench_model.py --device cuda --dtype bfloat16 --docs 256 --batch-size 32 \
        --doc-tokens 2000 --chunk-tokens 1500 --new-tokens 256
CPU defaults are tiny (about 2 minutes on 2 cores). Prompts are random token ids of the given lengths:
doc level = one forward pass (logits decoding), chunk level = greedy generation of --new-tokens tokens
(no EOS token, so every chunk generates the full budget, the worst case). Baseline for the ratio:
batch size 1 measured in the same run. Writes JSON + Markdown to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

RELEASED_SHAPE = dict(hidden_size=1280, intermediate_size=2048, num_hidden_layers=24, num_attention_heads=16,
                      num_key_value_heads=1, vocab_size=32000)
RESULTS = Path(__file__).resolve().parent / "results"


class _IdsTokenizer:
    """Just what prox.models.hf._Runner needs when prompts are already token ids."""

    pad_token_id, eos_token_id = 0, None  # no EOS: every chunk generates its full budget

    def batch_decode(self, rows, skip_special_tokens=True):
        return [" ".join(map(str, row.tolist())) for row in rows]


def build_model(device: str, dtype: str, max_positions: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**RELEASED_SHAPE, max_position_embeddings=max_positions, bos_token_id=1, eos_token_id=None)
    return LlamaForCausalLM(config).to(device=device, dtype=getattr(torch, dtype)).eval()


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
    parser.add_argument("--name", default="model_cpu")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {"settings": vars(args), "device": device_name(args.device), "shape": RELEASED_SHAPE, **run(args)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


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


if __name__ == "__main__":
    main()
