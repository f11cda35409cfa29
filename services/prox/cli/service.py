"""`prox service doc-refiner|chunk-refiner|executor`: run one streaming service."""
from __future__ import annotations

from ..common.config import add_settings_arguments

SERVICES = ("doc-refiner", "chunk-refiner", "executor")


def register(subparsers) -> None:
    parser = subparsers.add_parser("service", help="run one streaming service (its own consumer group)")
    parser.add_argument("name", choices=SERVICES)
    add_settings_arguments(parser)
    parser.set_defaults(func=run)


def build_stage(name: str, settings):
    if name == "doc-refiner":
        from ..refiners.doc_refiner import DocRefiner

        return DocRefiner(settings)
    if name == "chunk-refiner":
        from ..refiners.chunk_refiner import ChunkRefiner

        return ChunkRefiner(settings)
    from ..executor.service import ExecutorStage

    return ExecutorStage(settings)


def run(args) -> int:
    from ..common.config import load_settings
    from ..common.logs import setup_logging
    from ..common.runtime import run_service

    settings = load_settings(args)
    setup_logging(settings.log_level)
    return run_service(build_stage(args.name, settings), settings)
