"""`prox dlq list|resend`: inspect dead letters, and send them back once the cause is fixed."""
from __future__ import annotations

import asyncio
import collections
import json

from ..common.config import ToolSettings, add_settings_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser("dlq", help="list or re-send dead letters")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="print dead letters as JSON lines, then a count by reason")
    listing.add_argument("--reason", help="only this reason")
    listing.add_argument("--summary", action="store_true", help="only the count by reason")
    add_settings_arguments(listing, ToolSettings)
    listing.set_defaults(func=run_list)
    resend = actions.add_parser("resend", help="re-send dead letters' original payloads to their source topic")
    resend.add_argument("--reason", help="only this reason")
    resend.add_argument("--id", action="append", dest="ids", help="only this document id (repeatable)")
    resend.add_argument("--to-topic", help="send here instead of the source topic")
    add_settings_arguments(resend, ToolSettings)
    resend.set_defaults(func=run_resend)


async def _letters(settings, reason=None, ids=None):
    from prox_proto import DeadLetter, decode_json

    from ..common.kafka_io import read_topic

    async for record in read_topic(settings.kafka, settings.topics.dlq):
        letter = decode_json(record.value, DeadLetter)
        if (reason is None or letter.reason == reason) and (not ids or letter.id in ids):
            yield letter


def run_list(args) -> int:
    from prox_proto import encode_json

    from ..common.config import ToolSettings, load_settings

    settings = load_settings(args, struct_type=ToolSettings)

    async def main() -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        async for letter in _letters(settings, args.reason):
            counts[letter.reason] += 1
            if not args.summary:
                print(encode_json(letter).decode())
        return counts

    counts = asyncio.run(main())
    print(json.dumps({"dead_letters": sum(counts.values()), "by_reason": dict(counts)}))
    return 0


def run_resend(args) -> int:
    from ..common.config import ToolSettings, load_settings
    from ..common.dlq import original_payload
    from ..common.kafka_io import make_producer

    settings = load_settings(args, struct_type=ToolSettings)

    async def main() -> tuple[int, int]:
        sent = skipped = 0
        producer = make_producer(settings.kafka)
        await producer.start()
        try:
            async for letter in _letters(settings, args.reason, set(args.ids or [])):
                if letter.truncated:  # the full payload was not kept; re-sending a cut would corrupt it
                    skipped += 1
                    continue
                key = letter.key.encode() if letter.key else None
                await producer.send_and_wait(args.to_topic or letter.source_topic, original_payload(letter), key=key)
                sent += 1
        finally:
            await producer.stop()
        return sent, skipped

    sent, skipped = asyncio.run(main())
    print(json.dumps({"resent": sent, "skipped_truncated": skipped}))
    return 0
