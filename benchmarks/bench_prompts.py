"""Prompt building per core on real pages with the real Llama-2 tokenizer, before and after in the same run:
- doc prompt before: the whole page slow-encoded, then cut to 2,000 ids (the code before `slow_encode_head`);
- doc prompt now: `PromptBuilder.doc_ids`, which encodes only what the cut keeps (the ids are checked identical);
- chunk prompts: `PromptBuilder.chunk_prompts` (unchanged; for the record).
One thread (TOKENIZERS_PARALLELISM=false), best of --repeats, baseline and new interleaved:
    python benchmarks/bench_prompts.py [--pages N] [--repeats 3]
Writes benchmarks/results/prompts.{json,md}.
"""
from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # per-core figures: no Rust thread pool

import argparse  # noqa: E402
import gzip  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = HERE.parent.parent / "shared"


def load_pages(path: Path, limit: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in itertools.islice(handle, limit or None)]


class EncodeCounter:
    """Ids the segment encoder produced (what was encoded, kept or not)."""

    def __init__(self, tokenizer):
        self.ids, self._encode = 0, tokenizer._encode_segment
        tokenizer._encode_segment = self._count

    def _count(self, segment: str) -> list[int]:
        ids = self._encode(segment)
        self.ids += len(ids)
        return ids


def best_time(run, pages: list[str]) -> float:
    started = time.perf_counter()
    for text in pages:
        run(text)
    return time.perf_counter() - started


def measure(variants: dict, pages: list[str], repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():  # interleaved, so a noisy neighbour hits both alike
            best[name] = min(best[name], best_time(run, pages))
    return best


def run(args) -> dict:
    from prox.models.prompts import DOC_MAX_TOKENS, PromptBuilder, chat_prompt
    from prox.models.tokenizer import load_prox_tokenizer

    tokenizer = load_prox_tokenizer(args.tokenizer)
    builder = PromptBuilder(tokenizer)
    pages = load_pages(args.pages_file, args.pages)

    def doc_before(text: str) -> list[int]:
        return tokenizer.slow_encode(chat_prompt(text))[:DOC_MAX_TOKENS]

    variants = {"doc_before": doc_before, "doc_now": builder.doc_ids, "chunk": builder.chunk_prompts}
    different = sum(doc_before(text) != builder.doc_ids(text) for text in pages)
    counter = EncodeCounter(tokenizer)
    encoded = {}
    for name in ("doc_before", "doc_now"):
        counter.ids = 0
        kept = sum(len(variants[name](text)) for text in pages)
        encoded[name] = {"ids_encoded": counter.ids, "ids_kept": kept}
    seconds = measure(variants, pages, args.repeats)
    runs = {name: {"seconds": round(s, 3), "docs_per_s": round(len(pages) / s, 1), **encoded.get(name, {})}
            for name, s in seconds.items()}
    return {"pages": len(pages), "source": args.pages_file.name, "tokenizer": args.tokenizer.name,
            "doc_ids_different": different, "runs": runs,
            "doc_speedup": round(seconds["doc_before"] / seconds["doc_now"], 2),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (one thread used)",
            "python": platform.python_version()}


def markdown(results: dict) -> str:
    runs = results["runs"]
    lines = [f"# Prompt building per core ({results['machine']})", "",
             f"{results['pages']} pages of {results['source']}, tokenizer {results['tokenizer']}; best of the "
             f"repeats, baseline and new interleaved in the same run; doc ids different: "
             f"{results['doc_ids_different']}.", "",
             "| prompts | docs/s (one core) | seconds | ids encoded | ids kept |", "|---|---|---|---|---|"]
    for name, label in (("doc_before", "doc, before (whole page encoded, then cut)"),
                        ("doc_now", "doc, now (only what the 2,000-id cut keeps)"), ("chunk", "chunk (unchanged)")):
        r = runs[name]
        lines.append(f"| {label} | {r['docs_per_s']} | {r['seconds']} | {r.get('ids_encoded', '')} | "
                     f"{r.get('ids_kept', '')} |")
    lines += ["", f"doc prompts: {results['doc_speedup']}x the docs/s of before, same ids.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=0, help="first N pages (default: all)")
    parser.add_argument("--pages-file", type=Path, default=SHARED / "data" / "wcxb-dev.jsonl.gz")
    parser.add_argument("--tokenizer", type=Path, default=SHARED / "llama2-tokenizer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="prompts", help="results file stem")
    args = parser.parse_args()
    results = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
