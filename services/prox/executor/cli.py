"""`prox execute`: run stored doc/chunk programs over a JSONL file offline (streaming, constant memory)."""
from __future__ import annotations

import argparse


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _ratio(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "execute",
        help="execute stored ProX programs over a JSONL file",
        description="Each input line: {\"id\"?, \"text\", \"doc_program\"?, \"chunk_program\"?, \"keep_prob\"?} "
        "(other fields pass through). Each valid line gives {\"id\", \"text\" (null when dropped), "
        "\"dropped\", \"report\"}. Malformed lines are reported on stderr and make the exit code 1. "
        ".jsonl.gz works for input and output; '-' is stdin/stdout.",
    )
    parser.add_argument("--input", required=True, help="input JSONL (.jsonl or .jsonl.gz, '-' for stdin)")
    parser.add_argument("--output", required=True, help="output JSONL (.jsonl or .jsonl.gz, '-' for stdout)")
    parser.add_argument("--max-errors", type=_positive_int, default=2,
                        help="a chunk program with at least this many errors is ignored (default 2)")
    parser.add_argument("--min-keep-ratio", type=_ratio, default=0.05,
                        help="drop when kept words / original words is at most this (default 0.05)")
    parser.add_argument("--min-words", type=int, default=11, help="drop when fewer words remain (default 11)")
    parser.add_argument("--deletion-only", action="store_true",
                        help="a normalize whose target is not its source with characters deleted is an error")
    parser.add_argument("--max-growth", type=_positive_float, default=None, metavar="FACTOR",
                        help="a normalize that would make the text longer than FACTOR x its original length is an error")
    parser.add_argument("--keep-threshold", type=_ratio, default=None, metavar="P",
                        help="when an input has keep_prob, keep it iff keep_prob >= P (instead of its doc program)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from .execute import ExecutorOptions
    from .stream import execute_file

    options = ExecutorOptions(
        max_errors=args.max_errors, min_keep_ratio=args.min_keep_ratio, min_words=args.min_words,
        deletion_only=args.deletion_only, max_growth=args.max_growth, keep_threshold=args.keep_threshold,
    )
    try:
        stats = execute_file(args.input, args.output, options)
    except OSError as exc:
        print(f"prox execute: {exc}", file=sys.stderr)
        return 2
    print(f"prox execute: {stats.written} written ({stats.dropped} dropped), {stats.malformed} malformed "
          f"of {stats.read} lines", file=sys.stderr)
    return 1 if stats.malformed else 0
