"""`prox produce` (file → topic) and `prox consume` (topic → file)."""
from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from ..common.config import ToolSettings, add_settings_arguments


@dataclass
class ProduceStats:
    sent: int = 0
    malformed: int = 0
    repaired: int = 0
    duplicates: int = 0
    ids: set = field(default_factory=set)


def add_input_arguments(parser) -> None:
    parser.add_argument("--format", choices=("jsonl", "parquet", "wet"), help="input format (default: by extension)")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--id-field", default="id")
    parser.add_argument("--url-field", default="url")
    parser.add_argument("--limit", type=int, help="send at most N documents")


def input_problem(item) -> str:
    """How a `Malformed` (skipped) or `Repaired` (sent) input item is reported."""
    from ..common.inputs import Malformed

    return f"skipped malformed input: {item.reason}" if isinstance(item, Malformed) else f"repaired: {item.reason}"


def input_documents(args):
    from ..common.inputs import Fields, read_documents

    fields = Fields(text=args.text_field, id=args.id_field, url=args.url_field)
    return read_documents(args.input, fields, args.format)


async def produce_documents(kafka, topic: str, items: Iterable, limit: Optional[int] = None,
                            on_progress: Optional[Callable[[ProduceStats], None]] = None,
                            on_malformed: Optional[Callable] = None) -> ProduceStats:
    """Send raw documents keyed by id. Malformed items are reported (`on_malformed`), counted and not sent;
    repaired ones (text with no UTF-8 form, see `inputs.Repaired`) are reported the same way, counted and sent."""
    from prox_proto import encode_json

    from ..common.inputs import Malformed, Repaired
    from ..common.kafka_io import make_producer

    stats = ProduceStats()
    producer = make_producer(kafka)
    await producer.start()
    try:
        pending = []
        for item in items:
            if limit is not None and stats.sent >= limit:
                break
            if isinstance(item, (Malformed, Repaired)):
                if isinstance(item, Malformed):
                    stats.malformed += 1
                else:
                    stats.repaired += 1
                if on_malformed:
                    on_malformed(item)
                continue
            if item.id in stats.ids:
                stats.duplicates += 1
            stats.ids.add(item.id)
            pending.append(await producer.send(topic, encode_json(item), key=item.id.encode()))
            stats.sent += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
            if on_progress:
                on_progress(stats)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return stats


def register(subparsers) -> None:
    produce = subparsers.add_parser("produce", help="send documents from a file (JSONL[.gz], Parquet, WET) to a topic")
    produce.add_argument("--input", required=True)
    produce.add_argument("--topic", help="default: the raw topic")
    add_input_arguments(produce)
    add_settings_arguments(produce, ToolSettings)
    produce.set_defaults(func=run_produce)

    consume = subparsers.add_parser("consume", help="write a topic's messages to a JSONL file")
    consume.add_argument("--topic", required=True, help="topic name, or a role: raw, refined, dropped, dlq")
    consume.add_argument("--output", default="-", help="JSONL[.gz] file, - for stdout")
    consume.add_argument("--follow", action="store_true", help="keep reading new messages until Ctrl-C")
    consume.add_argument("--dedupe", action="store_true", help="write each document id once (first wins)")
    add_settings_arguments(consume, ToolSettings)
    consume.set_defaults(func=run_consume)


def run_produce(args) -> int:
    from ..common.config import ToolSettings, load_settings
    from ..common.progress import Progress

    settings = load_settings(args, struct_type=ToolSettings)
    progress = Progress("produce")

    def malformed(item) -> None:
        print(f"prox produce: {args.input}:{item.line}: {input_problem(item)}", file=sys.stderr)

    stats = asyncio.run(produce_documents(
        settings.kafka, args.topic or settings.topics.raw, input_documents(args), args.limit,
        on_progress=lambda s: progress.update(s.sent), on_malformed=malformed,
    ))
    progress.update(stats.sent, force=True)
    progress.close()
    print(json.dumps({"sent": stats.sent, "malformed": stats.malformed, "repaired": stats.repaired,
                      "duplicate_ids": stats.duplicates}))
    return 1 if stats.malformed else 0


def run_consume(args) -> int:
    from ..common.config import ToolSettings, load_settings

    settings = load_settings(args, struct_type=ToolSettings)
    roles = settings.topics.__struct_fields__
    topic = settings.topics.name(args.topic) if args.topic in roles else args.topic
    return asyncio.run(_consume(settings, topic, args))


async def _consume(settings, topic: str, args) -> int:
    from ..common.inputs import open_text
    from ..common.kafka_io import read_topic

    seen: set[str] = set()
    out = sys.stdout if args.output == "-" else open_text(args.output, "wt")
    written = 0
    try:
        async for record in read_topic(settings.kafka, topic, follow=args.follow):
            key = record.key.decode("utf-8", "replace") if record.key else None
            if args.dedupe and key is not None:
                if key in seen:
                    continue
                seen.add(key)
            out.write(_as_json_line(record.value) + "\n")
            written += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"prox consume: {written} messages from {topic}", file=sys.stderr)
    return 0


def _as_json_line(value: bytes) -> str:
    """JSON topics are written as they are; msgpack (internal topics) is converted to JSON."""
    try:
        return json.dumps(json.loads(value), ensure_ascii=False)
    except ValueError:
        import msgspec

        return msgspec.json.encode(msgspec.msgpack.decode(value)).decode()
