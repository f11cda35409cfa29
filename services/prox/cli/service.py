"""`prox service NAME`: run one streaming service, each with its own settings (`prox service NAME --help`)."""
from __future__ import annotations

SERVICES = {
    "doc-refiner": "raw documents -> Triton prox_doc -> doc programs",
    "chunk-refiner": "kept documents -> Triton prox_chunk -> chunk programs",
    "executor": "runs doc and chunk programs (stateless)",
    "sink": "refined documents -> deduplicated, durable Parquet shards (faust-streaming)",
}


def settings_type(name: str) -> type:
    if name in ("doc-refiner", "chunk-refiner"):
        from ..common.config import RefinerSettings

        return RefinerSettings
    if name == "executor":
        from ..executor.settings import ExecutorServiceSettings

        return ExecutorServiceSettings
    from ..sink.settings import SinkSettings

    return SinkSettings


def register(subparsers) -> None:
    from ..common.config import add_settings_arguments

    parser = subparsers.add_parser("service", help="run one streaming service (its own consumer group)")
    names = parser.add_subparsers(dest="name", metavar="NAME", required=True)
    for name, text in SERVICES.items():
        service = names.add_parser(name, help=text, description=text)
        add_settings_arguments(service, settings_type(name))
        service.set_defaults(func=run)


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
    if args.name == "sink":  # faust-based (prox.sink.service)
        from ..sink.service import run as run_sink

        return run_sink(args)
    from ..common.config import load_settings
    from ..common.logs import setup_logging
    from ..common.runtime import run_service

    settings = load_settings(args, struct_type=settings_type(args.name))
    setup_logging(settings.log_level)
    return run_service(build_stage(args.name, settings), settings)
