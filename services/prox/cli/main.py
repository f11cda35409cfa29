"""`prox`: one entry point; each command lives in the module that owns it."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines `register(subparsers)`, adding its parser(s) with `set_defaults(func=...)`;
# `func(args)` returns the exit code. Modules keep heavy imports inside `func`.
COMMAND_MODULES = (
    "prox.cli.local",        # local
    "prox.cli.io",           # produce, consume
    "prox.cli.service",      # service doc-refiner|chunk-refiner|executor
    "prox.models.cli",       # model-server
    "prox.cli.topics",       # topics create
    "prox.cli.dlq",          # dlq list|resend
    "prox.cli.schema",       # schema
    "prox.executor.cli",     # execute
    "prox.eval.cli",         # eval
    "prox.cli.prompts",      # prompts
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prox",
        description="ProX Stream: refine pre-training data by having small LMs write a program for every document.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Settings come from flags, then PROX_* environment variables, then --config YAML; "
        "`prox COMMAND --help` lists each command's options and their environment variables.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
