"""`prox prompts`: the exact token ids the hf backend feeds the refining models, one JSON line per document.

Made by the backend's own code path (`prox.models.prompts.load_prompt_builder`); needs only the model folder's
tokenizer files and config.json, no weights and no torch.
"""
from __future__ import annotations

import json
import sys

STAGES = ("doc", "chunk")


class UsageError(Exception):
    """A bad model folder, input file or option: printed as one line, exit code 2."""


def register(subparsers) -> None:
    from prox.models.prompts import CHUNK_MAX_TOKENS, DEFAULT_FORMAT, PROMPT_FORMATS

    parser = subparsers.add_parser(
        "prompts", help="write the token ids the hf backend would feed the models (no weights needed)",
        description="One output line per input document, in input order: "
        '{"id", "doc": {"ids"}, "chunks": [{"first_line", "last_line", "ids", "sent"}]}.',
    )
    parser.add_argument("--model", required=True, help="model folder (tokenizer.model or tokenizer.json, config.json)")
    parser.add_argument("--input", required=True, help="JSONL[.gz] of documents ({\"id\", \"text\"})")
    parser.add_argument("--output", required=True, help="JSONL[.gz] file, - for stdout")
    parser.add_argument("--stages", default="doc,chunk", help="comma-separated: doc, chunk (default both)")
    parser.add_argument("--format", default=DEFAULT_FORMAT, choices=PROMPT_FORMATS,
                        help="original: as the original ProX inference (default); fixed: shorten the document, "
                        "keep [/INST]")
    parser.add_argument("--chunk-tokens", type=int, default=CHUNK_MAX_TOKENS, help="token budget of one chunk")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        stages = parse_stages(args.stages)
        written = write_prompts(args.model, args.input, args.output, stages, args.format, args.chunk_tokens)
    except UsageError as exc:
        print(f"prox prompts: error: {exc}", file=sys.stderr)
        return 2
    print(f"prox prompts: {written} documents", file=sys.stderr)
    return 0


def parse_stages(text: str) -> tuple[str, ...]:
    stages = tuple(stage.strip() for stage in text.split(",") if stage.strip())
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown or not stages:
        raise UsageError(f"--stages takes doc and/or chunk, not {text!r}")
    return stages


def write_prompts(model: str, source: str, target: str, stages, prompt_format: str, chunk_tokens: int) -> int:
    from prox.common.inputs import open_text
    from prox.models.prompts import load_prompt_builder
    from prox.models.tokenizer import TokenizerLoadError

    try:
        builder = load_prompt_builder(model, prompt_format, chunk_tokens)
    except TokenizerLoadError as exc:
        raise UsageError(exc) from None
    documents = list(_documents(source))  # read (and validated) whole before the output is opened
    try:
        out = sys.stdout if target == "-" else open_text(target, "wt")
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        for document in documents:
            out.write(json.dumps(prompt_record(builder, document.id, document.text, stages)) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return len(documents)


def prompt_record(builder, doc_id: str, text: str, stages) -> dict:
    record: dict = {"id": doc_id}
    if "doc" in stages:
        record["doc"] = {"ids": builder.doc_ids(text)}
    if "chunk" in stages:
        record["chunks"] = [prompt._asdict() for prompt in builder.chunk_prompts(text)]
    return record


def _documents(source: str):
    from prox.common.inputs import Malformed, Repaired, read_documents

    try:
        for item in read_documents(source, fmt="jsonl"):
            if isinstance(item, Malformed):
                raise UsageError(f"{source}:{item.line}: not a document: {item.reason}")
            if not isinstance(item, Repaired):
                yield item
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {source}: {' '.join(str(exc).split())}") from None
