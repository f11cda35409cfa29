"""`prox execute`: run stored doc/chunk programs over a JSONL file offline (streaming, constant memory)."""
from __future__ import annotations


def register(subparsers) -> None:
    from ..common.config import add_settings_arguments
    from .settings import ExecutorOptions

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
    add_settings_arguments(parser, ExecutorOptions, root=("executor",))  # the executor service's settings
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..common.config import load_settings
    from .settings import ExecutorOptions
    from .stream import execute_file

    options = load_settings(args, struct_type=ExecutorOptions, root=("executor",))
    try:
        stats = execute_file(args.input, args.output, options)
    except OSError as exc:
        print(f"prox execute: {exc}", file=sys.stderr)
        return 2
    print(f"prox execute: {stats.written} written ({stats.dropped} dropped), {stats.malformed} malformed "
          f"of {stats.read} lines", file=sys.stderr)
    return 1 if stats.malformed else 0
