"""`prox schema`: the JSON Schema of every producer- and consumer-facing message."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of every public message")
    parser.set_defaults(func=run)


def run(args) -> int:
    from prox_proto.schema import schema_json

    print(schema_json())
    return 0
