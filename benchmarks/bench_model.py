"""Throughput of the `hf` engines on a random-init model of the released ProX refiners' shape, against the
padded baselines in the same run, on real prompts (the WCXB pages as `prox prompts` writes them).

In-process only (torch + transformers; no pytriton/tritonclient import), so it runs on a bare GPU box. On the
device machine (one script, one run; see benchmarks/results/model_gpu.md):
    prox prompts --model HUB_LAYOUT_DIR --input ../shared/data/wcxb-dev.jsonl.gz --output wcxb-prompts.jsonl.gz
    python benchmarks/bench_model.py --device cuda --dtype bfloat16 --prompts wcxb-prompts.jsonl.gz \
        --docs 512 --max-chunks 2048 --batch-size 64 --new-tokens 256 --name model_gpu
Without --prompts the prompts are made here from --pages (default ../shared/data/wcxb-dev.jsonl.gz) with the
tokenizer in --tokenizer (default ../shared/llama2-tokenizer, test use only), or, where those are absent,
random ids of --doc-tokens / --chunk-tokens. Per stage it reports input (prompt) tokens/s of
- doc: the engine (length buckets under a token budget, last-position logits only) vs padded forward (batches
  of --batch-size in input order padded to their longest prompt, logits of every position: the old engine);
- chunk: the engine (continuous batching on CUDA, --chunk-engine) vs padded generate() (batches of
  --batch-size sorted by length: the old engine); random weights rarely emit EOS, so most chunks generate the
  full --new-tokens (the worst case).
CPU defaults are tiny (released shape, 4 documents, prompts cropped to 128 ids, 4 chunk prompts; about a minute on 2 cores).

--via-triton: the same writers through `prox model-server --doc-backend hf --chunk-backend hf` and
`TritonRefinerClient`, against the writers called in-process in the same run (the ratio is Triton's overhead).
A random-init model of `--shape` is saved with a SentencePiece tokenizer trained here on synthetic words; prompts
are real prompt templates around synthetic words sized to --doc-tokens / --chunk-tokens (one chunk per document):
    python benchmarks/bench_model.py --via-triton                      # shape tiny, cpu
    python benchmarks/bench_model.py --via-triton --shape released --device cuda --docs 256 --batch-size 16 \
        --doc-tokens 2000 --chunk-tokens 1500
"""
from __future__ import annotations

import argparse
import gzip
import json
import platform
import time
from pathlib import Path

RELEASED_SHAPE = dict(hidden_size=1280, intermediate_size=2048, num_hidden_layers=24, num_attention_heads=16,
                      num_key_value_heads=1, vocab_size=32000)
TINY_SHAPE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, vocab_size=32000)
SHAPES = {"released": RELEASED_SHAPE, "tiny": TINY_SHAPE}
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = HERE.parent.parent / "shared"
DEFAULT_PAGES = SHARED / "data" / "wcxb-dev.jsonl.gz"
DEFAULT_TOKENIZER = SHARED / "llama2-tokenizer"
WORDS_PER_LINE = 10


def build_model(device: str, dtype: str, max_positions: int, shape: dict = RELEASED_SHAPE):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, max_position_embeddings=max_positions, bos_token_id=1, eos_token_id=None)
    return LlamaForCausalLM(config).to(device=device, dtype=getattr(torch, dtype)).eval()


# --- --via-triton: a saved model + tokenizer, the model server, the client -------------------
def train_tokenizer(directory: Path, vocab_size: int = 2000) -> None:
    """A Llama-style SentencePiece tokenizer.model over the synthetic words and the prompt template."""
    import random

    import sentencepiece as spm

    from prox.models.prompts import chat_prompt

    rng = random.Random(0)
    sentences = [" ".join(f"w{rng.randrange(30000)}" for _ in range(WORDS_PER_LINE)) for _ in range(4000)]
    sentences += [chat_prompt(f"[doc]\n[{i:03d}]w1 w2\n[/doc]") + " keep_doc() drop_doc()" for i in range(200)]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(directory / "spm"), vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False,
        normalization_rule_name="identity", remove_extra_whitespaces=False, minloglevel=2, num_threads=1,
    )
    (directory / "spm.model").rename(directory / "tokenizer.model")
    (directory / "spm.vocab").unlink()


def save_random_model(directory: Path, shape: dict, max_positions: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    train_tokenizer(directory)
    model = build_model("cpu", "float32", max_positions, shape)
    model.config.eos_token_id = model.generation_config.eos_token_id = 2
    model.save_pretrained(directory)
    return directory


def sized_text(rng, length_of, target: int) -> str:
    """Lines of synthetic words, as many as keep length_of(text) <= target (at least one line)."""
    lines: list[str] = []
    while True:
        line = " ".join(f"w{rng.randrange(30000)}" for _ in range(WORDS_PER_LINE))
        if lines and length_of("\n".join(lines + [line])) > target:
            return "\n".join(lines)
        lines.append(line)


def level_texts(args, prompts) -> dict[str, tuple[list[str], list[int]]]:
    """Per level: texts sized to the requested prompt length, and their prompt lengths in tokens."""
    import random

    rng = random.Random(0)

    def chunk_length(text: str) -> float:
        chunks = prompts.chunk_prompts(text)
        return len(chunks[0].ids) if len(chunks) == 1 else float("inf")  # one chunk per document, as sized

    docs = [sized_text(rng, lambda t: len(prompts.doc_ids(t)), args.doc_tokens) for _ in range(args.docs)]
    chunks = [sized_text(rng, chunk_length, args.chunk_tokens) for _ in range(args.docs)]
    return {"doc": (docs, [len(prompts.doc_ids(t)) for t in docs]), "chunk": (chunks, list(map(chunk_length, chunks)))}


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
        "--chunk-model", str(model_dir), "--device", args.device, "--triton-max-batch-size", str(args.batch_size),
        "--chunk-tokens", str(args.chunk_tokens))
    try:
        return asyncio.run(_measure_client(args, url, texts, CHUNK_NEW_TOKENS))
    finally:
        process.terminate()
        process.wait(timeout=60)


async def _measure_client(args, url: str, texts, new_tokens: int) -> dict:
    import asyncio

    from prox.refiners.triton_client import TritonRefinerClient

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

    from prox.models.prompts import load_prompt_builder

    shape = SHAPES[args.shape]
    with tempfile.TemporaryDirectory(prefix="prox-bench-model-") as tmp:
        model_dir = save_random_model(Path(tmp, "model"), shape, max(args.doc_tokens, args.chunk_tokens) + 512)
        texts = level_texts(args, load_prompt_builder(model_dir, chunk_tokens=args.chunk_tokens))
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


# --- the default mode: engines vs padded baselines on real prompts ----------------------------
def load_prompt_ids(args) -> tuple[list[list[int]], list[list[int]], str]:
    """(doc prompts, sent chunk prompts, where they came from), each prompt cropped to --crop ids if set."""
    if args.prompts:
        rows = _jsonl_rows(Path(args.prompts), args.docs)
        source = f"prox prompts output {args.prompts}"
    elif args.tokenizer.joinpath("tokenizer.model").exists() and args.pages.exists():
        rows = _prompt_rows(args.tokenizer, args.pages, args.docs)
        source = f"{args.pages.name} with the tokenizer of {args.tokenizer.name}"
    else:
        return _random_prompts(args) + (f"random ids ({args.doc_tokens} / {args.chunk_tokens} tokens)",)
    docs = [row["doc"]["ids"] for row in rows]
    chunks = [chunk["ids"] for row in rows for chunk in row["chunks"] if chunk["sent"]][:args.max_chunks or None]
    crop = (lambda ids: ids[:args.crop]) if args.crop else (lambda ids: ids)
    return [crop(p) for p in docs], [crop(p) for p in chunks], source


def _jsonl_rows(path: Path, limit: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(limit), handle)]


def _prompt_rows(tokenizer_dir: Path, pages: Path, limit: int) -> list[dict]:
    """As `prox prompts` writes them; the tokenizer folder needs no config.json (context 2,048)."""
    from prox.models.prompts import PromptBuilder
    from prox.models.tokenizer import load_prox_tokenizer

    builder = PromptBuilder(load_prox_tokenizer(tokenizer_dir))
    rows = []
    for page in _jsonl_rows(pages, limit):
        chunks = [{"ids": c.ids, "sent": c.sent} for c in builder.chunk_prompts(page["text"])]
        rows.append({"doc": {"ids": builder.doc_ids(page["text"])}, "chunks": chunks})
    return rows


def _random_prompts(args) -> tuple[list[list[int]], list[list[int]]]:
    import random

    rng = random.Random(0)

    def prompts(length: int) -> list[list[int]]:
        return [[1] + [rng.randrange(3, 32000) for _ in range(length - 1)] for _ in range(args.docs)]

    return prompts(args.doc_tokens), prompts(args.chunk_tokens)


def timed(run_all, prompts: list[list[int]], sync, generated: int = 0) -> dict:
    sync()
    started = time.perf_counter()
    run_all(prompts)
    sync()
    seconds = time.perf_counter() - started
    tokens = sum(map(len, prompts))
    result = {"prompts": len(prompts), "input_tokens": tokens, "seconds": round(seconds, 3),
              "input_tokens_per_s": round(tokens / seconds, 1)}
    if generated:
        result["max_new_tokens"] = generated
    return result


def padded_forward(runner, prompts: list[list[int]]) -> None:
    """The old doc engine: fixed batches in input order, padded to their longest, logits of every position."""
    import torch

    for start in range(0, len(prompts), runner.batch_size):
        input_ids, mask = runner.left_padded(prompts[start:start + runner.batch_size])
        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            runner.model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1, :].float()


def padding_share(groups: list[list[int]], lengths: list[int]) -> float:
    padded = sum(len(group) * max(lengths[i] for i in group) for group in groups)
    return round(1 - sum(lengths) / padded, 4) if padded else 0.0


def run(args) -> dict:
    import torch

    from prox.models.engine import ModelRunner, length_buckets

    docs, chunks, source = load_prompt_ids(args)
    longest = max(map(len, docs + chunks)) + args.new_tokens
    model = build_model(args.device, args.dtype, max(longest, 2048), SHAPES[args.shape or "released"])
    runner = ModelRunner(model, args.device, pad_id=0, eos_id=2, batch_size=args.batch_size,
                         token_budget=args.token_budget)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    continuous = args.chunk_engine == "continuous" or (args.chunk_engine == "auto" and args.device.startswith("cuda"))

    def engine_generate(prompts):
        if continuous:
            return runner.generate_continuous(prompts, args.new_tokens)
        return runner.bucketed(prompts, lambda batch: runner.generate_padded(batch, args.new_tokens))

    def padded_generate(prompts):
        order = sorted(prompts, key=len)
        for start in range(0, len(order), args.batch_size):
            runner.generate_padded(order[start:start + args.batch_size], args.new_tokens)

    runner.bucketed(docs[:2], runner.next_token_logits)  # warm-up
    engine_generate(chunks[:2])
    results = {
        "source": source, "chunk_engine_kind": "continuous batching" if continuous else "padded (length buckets)",
        "doc_engine": timed(lambda p: runner.bucketed(p, runner.next_token_logits), docs, sync),
        "doc_padded_forward": timed(lambda p: padded_forward(runner, p), docs, sync),
        "chunk_engine": timed(engine_generate, chunks, sync, args.new_tokens),
        "chunk_padded_generate": timed(padded_generate, chunks, sync, args.new_tokens),
    }
    lengths = list(map(len, docs))
    results["doc_padding_share"] = {
        "engine": padding_share(length_buckets(lengths, args.batch_size, args.token_budget), lengths),
        "padded_forward": padding_share([list(range(i, min(i + args.batch_size, len(docs))))
                                         for i in range(0, len(docs), args.batch_size)], lengths)}
    for level, engine, baseline in (("doc", "doc_engine", "doc_padded_forward"),
                                    ("chunk", "chunk_engine", "chunk_padded_generate")):
        results[f"{level}_speedup"] = round(results[engine]["input_tokens_per_s"] /
                                            results[baseline]["input_tokens_per_s"], 2)
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
    parser.add_argument("--docs", type=int, default=4, help="documents (pages) to take")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per batch (the baselines' batch size)")
    parser.add_argument("--token-budget", type=int, default=32768, help="engine: padded tokens per forward pass")
    parser.add_argument("--doc-tokens", type=int, default=256, help="random / --via-triton doc prompt length")
    parser.add_argument("--chunk-tokens", type=int, default=128, help="random / --via-triton chunk prompt length")
    parser.add_argument("--new-tokens", type=int, default=8, help="256 for the released setting")
    parser.add_argument("--prompts", help="`prox prompts` output (JSONL[.gz]) to take the prompts from")
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES, help="pages to make prompts from")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="tokenizer folder for --pages")
    parser.add_argument("--crop", type=int, default=None, help="crop every prompt to N ids (default 128 on CPU)")
    parser.add_argument("--max-chunks", type=int, default=None, help="at most N chunk prompts (default --docs on CPU)")
    parser.add_argument("--chunk-engine", choices=("auto", "continuous", "padded"), default="auto")
    parser.add_argument("--name", default=None, help="results file stem (default model_cpu / model_triton_cpu)")
    parser.add_argument("--via-triton", action="store_true", help="through prox model-server + TritonRefinerClient")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="default: released (tiny with --via-triton)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    on_cpu = not args.device.startswith("cuda")
    if args.via_triton:
        args.name = args.name or f"model_triton_{args.device.split(':')[0]}"
        args.shape = args.shape or "tiny"
        results = {"settings": _settings(args), "device": device_name(args.device), **run_triton_comparison(args)}
        text = triton_markdown(results)
    else:
        args.name = args.name or ("model_cpu" if on_cpu else "model_gpu")
        args.shape = args.shape or "released"
        args.crop = args.crop if args.crop is not None else (128 if on_cpu else 0)
        args.max_chunks = args.max_chunks if args.max_chunks is not None else (args.docs if on_cpu else 0)
        results = {"settings": _settings(args), "device": device_name(args.device), "shape": SHAPES[args.shape],
                   "versions": _versions(), **run(args)}
        text = markdown(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


def _settings(args) -> dict:
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def _versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()}


def markdown(results: dict) -> str:
    lines = [f"# Model engines vs padded baselines ({results['device']})", "",
             f"prompts: {results['source']}; chunk engine: {results['chunk_engine_kind']}; "
             f"versions: `{json.dumps(results['versions'])}`", "", f"settings: `{json.dumps(results['settings'])}`", "",
             "| stage | run | prompts | input tokens | seconds | input tokens/s |", "|---|---|---|---|---|---|"]
    for stage, key in (("doc", "doc_engine"), ("doc", "doc_padded_forward"), ("chunk", "chunk_engine"),
                       ("chunk", "chunk_padded_generate")):
        r = results[key]
        lines.append(f"| {stage} | {key} | {r['prompts']} | {r['input_tokens']} | {r['seconds']} | "
                     f"{r['input_tokens_per_s']} |")
    share = results["doc_padding_share"]
    lines += ["", f"engine / baseline input tokens/s (same run): doc {results['doc_speedup']}x, "
              f"chunk {results['chunk_speedup']}x; doc padding share: engine {share['engine']}, "
              f"padded forward {share['padded_forward']}", ""]
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
