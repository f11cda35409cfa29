"""The executor service on the real embedded broker: routing, equivalence with `prox execute`, poison."""
from __future__ import annotations

import json

import pytest

from prox.executor import execute_document
from prox.executor.service import ExecutorStage
from prox_proto import ChunkProgram, DocProgram, encode_msgpack
from tests.fixtures.broker import service_settings
from tests.helpers.kafka import by_id, ensure_topics, produce, running, wait_for_records

pytestmark = pytest.mark.integration

ARTICLE = "\n".join(["Home | About | Contact"] + [f"Paragraph {i} has enough words to count as real content here." for i in range(5)] + ["© 2025 Example"])


def doc_message(doc_id: str, program: str, text: str = ARTICLE) -> bytes:
    return encode_msgpack(DocProgram(id=doc_id, text=text, doc_program=program, keep_prob=0.9, ingest_time=1.0))


def chunk_message(doc_id: str, program: str, text: str = ARTICLE) -> bytes:
    return encode_msgpack(ChunkProgram(id=doc_id, text=text, doc_program="keep_doc()", keep_prob=0.9,
                                       chunk_program=program, chunk_ranges=[(0, 6)], ingest_time=1.0))


async def test_executor_routes_programs_and_matches_offline_execution(kafka_settings, topics):
    await ensure_topics(kafka_settings, topics)
    settings = service_settings(kafka_settings, topics)
    programs = {"c1": "remove_lines(0, 0)\nremove_lines(6, 6)", "c2": 'normalize("Paragraph 1 ", "")\nkeep_chunk()',
                "c3": "remove_lines(all=True)"}
    await produce(kafka_settings, topics.doc_programs, [(b"d1", doc_message("d1", "keep_doc()")),
                                                        (b"d2", doc_message("d2", "drop_doc()"))])
    await produce(kafka_settings, topics.chunk_programs,
                  [(k.encode(), chunk_message(k, p)) for k, p in programs.items()]
                  + [(b"bad", b"\xc1 reserved byte: not msgpack"), (b"bad2", encode_msgpack({"id": 3}))])

    async with running(ExecutorStage(settings), settings):
        found = await wait_for_records(kafka_settings, [topics.kept, topics.dropped, topics.refined, topics.dlq], 7)

    assert [r.key for r in found[topics.kept]] == [b"d1"]
    dropped, refined = by_id(found[topics.dropped]), by_id(found[topics.refined])
    assert set(dropped) == {"d2", "c3"}
    assert dropped["d2"]["report"]["drop_reason"] == "doc_program" and dropped["d2"]["text"] is None
    for doc_id in ("c1", "c2"):
        expected = execute_document(ARTICLE, "keep_doc()", programs[doc_id], 0.9)
        assert refined[doc_id]["text"] == expected.text
        assert refined[doc_id]["chunk_program"] == programs[doc_id]
    reasons = {json.loads(r.value)["key"]: dict(r.headers)["prox.reason"] for r in found[topics.dlq]}
    assert reasons == {"bad": b"undecodable", "bad2": b"invalid_message"}
