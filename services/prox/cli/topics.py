"""`prox topics create`: the pipeline's topics, with partition counts and retention."""
from __future__ import annotations

import sys

from ..common.config import ToolSettings, add_settings_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser("topics", help="manage the pipeline's topics")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create every pipeline topic that does not exist")
    create.add_argument("--partitions", type=int, default=12, help="partitions per topic (parallelism ceiling)")
    create.add_argument("--replication-factor", type=int, default=None,
                        help="replicas per partition (default: min(3, brokers in the cluster))")
    create.add_argument("--retention-ms", type=int, default=7 * 24 * 3600 * 1000)
    add_settings_arguments(create, ToolSettings)
    create.set_defaults(func=run_create)


def run_create(args) -> int:
    import asyncio

    from ..common.config import ToolSettings, load_settings
    from ..common.kafka_io import create_topics

    settings = load_settings(args, struct_type=ToolSettings)
    status = asyncio.run(create_topics(settings.kafka, settings.topics.all(), args.partitions,
                                       args.replication_factor, args.retention_ms, check=False))
    for name, state in status.items():
        print(f"{name}\t{state}")
    refused = [name for name, state in status.items() if state.startswith("refused")]
    if refused:
        print(f"prox topics: the broker refused {len(refused)} of {len(status)} topics", file=sys.stderr)
    return 1 if refused else 0
