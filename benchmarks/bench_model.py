"""Throughput of the `hf` engines on a random-init model of the released ProX refiners' shape, against the
padded baselines in the same run, on real prompts (the WCXB pages as `prox prompts` writes them), made for one
15-minute device slot (the commands: benchmarks/results/model_gpu.md):
- bounded by time: --budget-s is split over the cases; a case runs rounds of --round-docs documents until its
  share is spent (at least one round), its rates over the documents done;
- every record (setup, each case, the summary) is appended to --out (JSON lines) as soon as it exists, and
  NAME.md is written from them (`--report FILE` rewrites it from a run that was cut short);
- a case that fails (torch.cuda.OutOfMemoryError, a generation error) is recorded and the run goes on;
- warm-ups are a couple of prompts; the chunk engine's cache is sized explicitly (a bounded share of the GPU);
- cases: doc engine (length buckets, last-position logits) vs padded forward (input order, logits of every
  position: the old engine); chunk padded generate() (--batch-size sorted by length: the old engine) vs the
  chunk engine (continuous batching on CUDA, one case per --requests-per-batch) vs vLLM (the engine ProX ran,
  same ids and weights, only where it is installed: never shipped);
- per case docs/s and input (raw) tokens/s per GPU against ProX's ~87k raw tokens/s per A100 (both stages);
  the summary adds both stages on one GPU, derived from the two measured rates.
Random weights rarely emit EOS, so most chunks generate all --new-tokens (the worst case). Without --prompts the
prompts are made here from --pages with --tokenizer (test use only) or are random ids. CPU defaults are tiny
(released shape, 4 documents, prompts cropped to 128 ids, 4 chunk prompts; about a minute on 2 cores).

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
from typing import Optional

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


# --- the default mode: engines vs padded baselines on real prompts, one device slot ----------------------
PROX_TOKENS_PER_S = 87_000  # ProX's own figure: raw tokens/s per A100, both stages
CASE_SHARES = {"doc_engine": 0.12, "doc_padded_forward": 0.08, "chunk_padded_generate": 0.15, "chunk_engine": 0.45,
               "vllm_chunk": 0.2}  # of --budget-s; the chunk engine's share is split over --requests-per-batch


def load_prompt_ids(args) -> tuple[list[list[int]], list[list[list[int]]], str]:
    """(doc prompts, the sent chunk prompts of each document, where they came from), each prompt cropped to
    --crop ids if set; at most --max-chunks chunk prompts in all (whole documents)."""
    if args.prompts:
        rows = _jsonl_rows(Path(args.prompts), args.docs)
        source = f"prox prompts output {args.prompts}"
    elif args.tokenizer.joinpath("tokenizer.model").exists() and args.pages.exists():
        rows = _prompt_rows(args.tokenizer, args.pages, args.docs)
        source = f"{args.pages.name} with the tokenizer of {args.tokenizer.name}"
    else:
        docs, chunks = _random_prompts(args)
        return docs, [[chunk] for chunk in chunks], f"random ids ({args.doc_tokens} / {args.chunk_tokens} tokens)"
    crop = (lambda ids: ids[:args.crop]) if args.crop else (lambda ids: ids)
    docs = [crop(row["doc"]["ids"]) for row in rows]
    chunk_docs, total = [], 0
    for row in rows:
        sent = [crop(chunk["ids"]) for chunk in row["chunks"] if chunk["sent"]]
        if args.max_chunks and total + len(sent) > args.max_chunks:
            break
        chunk_docs.append(sent)
        total += len(sent)
    return docs, chunk_docs, source


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


def timed_rounds(run_round, docs: list, round_docs: int, deadline: float, sync, input_tokens) -> dict:
    """Rounds of `round_docs` documents until all are done or the deadline has passed (at least one round);
    rates are over the documents done. `run_round` returns the tokens it generated."""
    done = tokens = generated = 0
    sync()
    started = time.perf_counter()
    for start in range(0, len(docs), round_docs):
        batch = docs[start:start + round_docs]
        generated += run_round(batch) or 0
        sync()
        done, tokens = done + len(batch), tokens + input_tokens(batch)
        if time.perf_counter() >= deadline:
            break
    seconds = time.perf_counter() - started
    return {"docs": done, "of_docs": len(docs), "input_tokens": tokens, "generated_tokens": generated,
            "seconds": round(seconds, 3), "docs_per_s": round(done / seconds, 3),
            "input_tokens_per_s": round(tokens / seconds, 1), "vs_prox_87k": round(tokens / seconds / PROX_TOKENS_PER_S, 3)}


def padded_forward(runner, prompts: list[list[int]]) -> None:
    """The old doc engine: fixed batches in input order, padded to their longest, logits of every position."""
    import torch

    for start in range(0, len(prompts), runner.batch_size):
        input_ids, mask = runner.left_padded(prompts[start:start + runner.batch_size])
        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            runner.model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1, :].float()


def padded_generate(runner, prompts: list[list[int]], new_tokens: int) -> int:
    """The old chunk engine: generate() on batches of --batch-size sorted by length."""
    order = sorted(prompts, key=len)
    return sum(len(tokens) for start in range(0, len(order), runner.batch_size)
               for tokens in runner.generate_padded(order[start:start + runner.batch_size], new_tokens))


def padding_share(groups: list[list[int]], lengths: list[int]) -> float:
    padded = sum(len(group) * max(lengths[i] for i in group) for group in groups)
    return round(1 - sum(lengths) / padded, 4) if padded else 0.0


class ResultSink:
    """Each record appended to a JSON-lines file as soon as it exists (a run cut short keeps what it did)."""

    def __init__(self, path: Optional[Path], run_id: str):
        self.path, self.run_id, self.records = path, run_id, []
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> dict:
        record = {"run": self.run_id, **record}
        self.records.append(record)
        if self.path:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        return record


def free_memory(*models) -> None:
    import gc

    import torch

    for model in models:
        if hasattr(model, "destroy_cached_continuous_batching_manager"):
            model.destroy_cached_continuous_batching_manager()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def guarded_case(sink: ResultSink, case: str, measure_case, cleanup=lambda: None) -> dict:
    """One case: its result, or its error (an out-of-memory included) recorded, and the run goes on."""
    try:
        result = measure_case()
    except Exception as exc:  # torch.cuda.OutOfMemoryError, GenerationFailed, a vLLM start failure...
        message = (str(exc).strip().splitlines() or [""])[0][:500]
        result = {"error": type(exc).__name__, "message": message}
    finally:
        cleanup()
    return sink.append({"case": case, **result})


class Slot:
    """The run's time: each case gets its share of what the budget had at the start, never past the end."""

    def __init__(self, budget_s: float):
        self.started, self.budget_s = time.perf_counter(), budget_s

    def deadline(self, share: float) -> float:
        end = self.started + self.budget_s
        return min(end, time.perf_counter() + share * self.budget_s)

    def left_s(self) -> float:
        return self.started + self.budget_s - time.perf_counter()


def chunk_tokens_of(chunk_docs: list[list[list[int]]]) -> int:
    return sum(len(prompt) for doc in chunk_docs for prompt in doc)


def flat(chunk_docs: list[list[list[int]]]) -> list[list[int]]:
    return [prompt for doc in chunk_docs for prompt in doc]


def run(args, sink: Optional[ResultSink] = None) -> dict:
    """Every case within --budget-s, each appended to the sink when done; returns the records by case."""
    import torch

    from prox.models.engine import ModelRunner, apply_attention, length_buckets

    sink = sink or ResultSink(None, time.strftime("%Y%m%dT%H%M%S"))
    slot = Slot(args.budget_s)
    docs, chunk_docs, source = load_prompt_ids(args)
    longest = max(map(len, docs + flat(chunk_docs))) + args.new_tokens
    shape = SHAPES[args.shape or "released"]
    doc_model = build_model(args.device, args.dtype, max(longest, 2048), shape)
    chunk_model = build_model(args.device, args.dtype, max(longest, 2048), shape)
    attention = apply_attention(chunk_model, args.device)
    runner = ModelRunner(doc_model, args.device, pad_id=0, eos_id=2, batch_size=args.batch_size,
                         token_budget=args.token_budget)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    continuous = args.chunk_engine == "continuous" or (args.chunk_engine == "auto" and args.device.startswith("cuda"))
    lengths = list(map(len, docs))
    sink.append({"case": "setup", "source": source, "docs": len(docs), "chunk_docs": len(chunk_docs),
                 "chunks": len(flat(chunk_docs)), "chunk_attention": attention,
                 "chunk_engine_kind": "continuous batching" if continuous else "padded (length buckets)",
                 "doc_padding_share": {
                     "engine": padding_share(length_buckets(lengths, args.batch_size, args.token_budget), lengths),
                     "padded_forward": padding_share([list(range(i, min(i + args.batch_size, len(docs))))
                                                      for i in range(0, len(docs), args.batch_size)], lengths)}})
    doc_tokens = lambda batch: sum(map(len, batch))  # noqa: E731
    runner.bucketed(docs[:2], runner.next_token_logits)  # warm-up: a few MB, not the cache of the chunk engine

    def doc_case(run_batch, share):
        def run_round(batch):
            run_batch(batch)
            return 0  # the doc stage generates nothing

        return lambda: timed_rounds(run_round, docs, args.round_docs, slot.deadline(share), sync, doc_tokens)

    guarded_case(sink, "doc_engine", doc_case(lambda b: runner.bucketed(b, runner.next_token_logits),
                                              CASE_SHARES["doc_engine"]), free_memory)
    guarded_case(sink, "doc_padded_forward", doc_case(lambda b: padded_forward(runner, b),
                                                      CASE_SHARES["doc_padded_forward"]), free_memory)
    del doc_model, runner.model
    free_memory()
    chunk_runner = ModelRunner(chunk_model, args.device, pad_id=0, eos_id=2, batch_size=args.batch_size,
                               token_budget=args.token_budget)
    chunk_runner.generate_padded(flat(chunk_docs)[:2], 2)  # warm-up

    def chunk_case(run_round, share):
        return lambda: timed_rounds(run_round, chunk_docs, args.round_docs, slot.deadline(share), sync,
                                    chunk_tokens_of)

    guarded_case(sink, "chunk_padded_generate", chunk_case(
        lambda b: padded_generate(chunk_runner, flat(b), args.new_tokens), CASE_SHARES["chunk_padded_generate"]),
        free_memory)
    requests_options = args.requests_per_batch or [None]
    for requests in requests_options:
        guarded_case(sink, f"chunk_engine_r{requests or 'default'}", lambda: chunk_engine_case(
            args, chunk_model, chunk_docs, requests, continuous, sync,
            slot.deadline(CASE_SHARES["chunk_engine"] / len(requests_options))), lambda: free_memory(chunk_model))
    guarded_case(sink, "vllm_chunk", lambda: vllm_case(args, chunk_model, chunk_docs, slot, sync))
    del chunk_model, chunk_runner
    free_memory()
    return summarize(sink)


def chunk_engine_case(args, model, chunk_docs, requests, continuous, sync, deadline) -> dict:
    """The chunk engine of the hf backend, sized explicitly (at most `requests` per batch if given)."""
    from prox.models.engine import ModelRunner

    runner = ModelRunner(model, args.device, pad_id=0, eos_id=2, batch_size=args.batch_size,
                         token_budget=args.token_budget, max_requests=requests)

    def run_round(batch):
        prompts = flat(batch)
        if continuous:
            return sum(map(len, runner.generate_continuous(prompts, args.new_tokens)))
        return sum(map(len, runner.bucketed(prompts, lambda b: runner.generate_padded(b, args.new_tokens))))

    run_round([flat(chunk_docs)[:2]])  # warm-up: sizes the stream (explicitly: no first-call cap) and captures graphs
    result = timed_rounds(run_round, chunk_docs, args.round_docs, deadline, sync, chunk_tokens_of)
    if runner.sizing is not None:
        result["sizing"] = runner.sizing.describe()
    return result


def vllm_case(args, model, chunk_docs, slot: Slot, sync) -> dict:
    """vLLM (the engine ProX ran) on the same prompt ids and weights, when it is installed; never shipped."""
    try:
        import vllm
    except ImportError:
        return {"skipped": "vllm is not installed"}
    if not args.device.startswith("cuda"):
        return {"skipped": "vllm runs on CUDA only here"}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="prox-bench-vllm-") as folder:
        model.save_pretrained(folder)
        llm = vllm.LLM(model=folder, skip_tokenizer_init=True, dtype=args.dtype, max_model_len=2048,
                       gpu_memory_utilization=args.vllm_memory, seed=0)
        params = vllm.SamplingParams(temperature=0.0, max_tokens=args.new_tokens, ignore_eos=True,
                                     detokenize=False)

        def run_round(batch):
            outputs = llm.generate([{"prompt_token_ids": prompt} for prompt in flat(batch)], params, use_tqdm=False)
            return sum(len(output.outputs[0].token_ids) for output in outputs)

        run_round([flat(chunk_docs)[:2]])
        result = timed_rounds(run_round, chunk_docs, args.round_docs,
                              slot.deadline(CASE_SHARES["vllm_chunk"]), sync, chunk_tokens_of)
        del llm
    return {**result, "vllm": vllm.__version__}


def summarize(sink: ResultSink) -> dict:
    """The records by case, the same-run ratios and both stages on one GPU (derived from the measured rates)."""
    by_case = {record["case"]: record for record in sink.records}
    summary: dict = {}

    def rate(case: str) -> Optional[float]:
        return by_case.get(case, {}).get("input_tokens_per_s")

    engines = [case for case in by_case if case.startswith("chunk_engine") and rate(case)]
    best_chunk = max(engines, key=rate, default=None)
    if rate("doc_engine") and rate("doc_padded_forward"):
        summary["doc_speedup"] = round(rate("doc_engine") / rate("doc_padded_forward"), 2)
    if best_chunk and rate("chunk_padded_generate"):
        summary["chunk_speedup"] = round(rate(best_chunk) / rate("chunk_padded_generate"), 2)
    if best_chunk and rate("doc_engine"):
        both = 1 / (1 / rate("doc_engine") + 1 / rate(best_chunk))
        summary["both_stages_tokens_per_s"] = round(both, 1)
        summary["both_stages_vs_prox_87k"] = round(both / PROX_TOKENS_PER_S, 3)
        summary["best_chunk_engine"] = best_chunk
    sink.append({"case": "summary", **summary})
    return by_case | {"summary": summary}


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
    parser.add_argument("--budget-s", type=float, default=None,
                        help="the whole run's time, split over the cases (default 480 on CUDA, 90 on CPU)")
    parser.add_argument("--round-docs", type=int, default=32, help="documents per engine call (a Triton batch)")
    parser.add_argument("--requests-per-batch", type=int, nargs="*", default=None,
                        help="chunk engine cases, one per value (default: the engine's own sizing)")
    parser.add_argument("--vllm-memory", type=float, default=0.4, help="vLLM gpu_memory_utilization, if installed")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines appended per case (default results/NAME.jsonl)")
    parser.add_argument("--report", type=Path, default=None, help="only rewrite NAME.md from this JSON-lines file")
    parser.add_argument("--name", default=None, help="results file stem (default model_cpu / model_triton_cpu)")
    parser.add_argument("--via-triton", action="store_true", help="through prox model-server + TritonRefinerClient")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="default: released (tiny with --via-triton)")
    args = parser.parse_args()
    on_cpu = not args.device.startswith("cuda")
    RESULTS.mkdir(exist_ok=True)
    if args.report:
        args.name = args.name or args.report.stem
        records = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
        return _write_markdown(args.name, markdown([r for r in records if r["run"] == records[-1]["run"]]))
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.via_triton:
        args.name = args.name or f"model_triton_{args.device.split(':')[0]}"
        args.shape = args.shape or "tiny"
        results = {"settings": _settings(args), "device": device_name(args.device), **run_triton_comparison(args)}
        (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
        return _write_markdown(args.name, triton_markdown(results))
    args.name = args.name or ("model_cpu" if on_cpu else "model_gpu")
    args.shape = args.shape or "released"
    args.crop = args.crop if args.crop is not None else (128 if on_cpu else 0)
    args.max_chunks = args.max_chunks if args.max_chunks is not None else (args.docs if on_cpu else 0)
    args.budget_s = args.budget_s or (90.0 if on_cpu else 480.0)
    sink = ResultSink(args.out or RESULTS / f"{args.name}.jsonl", time.strftime("%Y%m%dT%H%M%S"))
    sink.append({"case": "start", "settings": _settings(args), "device": device_name(args.device),
                 "shape": SHAPES[args.shape], "versions": _versions()})
    run(args, sink)
    _write_markdown(args.name, markdown(sink.records))


def _write_markdown(name: str, text: str) -> None:
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


def _settings(args) -> dict:
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}


def _versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()}


CASE_ROWS = (("doc", "doc_engine"), ("doc", "doc_padded_forward"), ("chunk", "chunk_padded_generate"))


def markdown(records: list[dict]) -> str:
    """The run's records (JSON lines) as a table: one row per case, errors and skips included."""
    by_case = {record["case"]: record for record in records}
    start, setup = by_case.get("start", {}), by_case.get("setup", {})
    summary = {key: value for key, value in by_case.get("summary", {}).items() if key not in ("run", "case")}
    lines = [f"# Model engines vs padded baselines ({start.get('device', '?')})", "",
             f"prompts: {setup.get('source', '?')}; chunk engine: {setup.get('chunk_engine_kind', '?')}, attention "
             f"{setup.get('chunk_attention', '?')}; versions: `{json.dumps(start.get('versions', {}))}`", "",
             f"settings: `{json.dumps(start.get('settings', {}))}`", "",
             "| stage | case | docs done | input tokens | generated | seconds | docs/s | input tokens/s | vs ProX 87k/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    cases = list(CASE_ROWS) + [("chunk", case) for case in by_case if case.startswith(("chunk_engine", "vllm"))]
    for stage, case in cases:
        r = by_case.get(case)
        if r is None:
            lines.append(f"| {stage} | {case} | not run (budget over) | | | | | | |")
        elif "error" in r or "skipped" in r:
            lines.append(f"| {stage} | {case} | {r.get('error', 'skipped')}: {r.get('message', r.get('skipped'))} "
                         "| | | | | | |")
        else:
            lines.append(f"| {stage} | {case} | {r['docs']} of {r['of_docs']} | {r['input_tokens']} | "
                         f"{r['generated_tokens']} | {r['seconds']} | {r['docs_per_s']} | {r['input_tokens_per_s']} | "
                         f"{r['vs_prox_87k']} |")
    sizings = [f"{case}: {r['sizing']}" for case, r in by_case.items() if r.get("sizing")]
    share = setup.get("doc_padding_share", {})
    lines += ["", f"same run: {json.dumps(summary)}; doc padding share: engine {share.get('engine')}, padded "
              f"forward {share.get('padded_forward')}", ""] + [f"- {line}" for line in sizings] + [""]
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
