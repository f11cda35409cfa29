"""The three services on the real broker and real Triton (heuristic backend), end to end."""
from __future__ import annotations

import gzip
import itertools
import json

import jsonschema
import pytest

from prox.executor import execute_document
from prox_proto.schema import json_schemas
from tests.fixtures.paths import SAMPLE
from tests.helpers.kafka import produce

pytestmark = pytest.mark.integration


def sample_pages(count: int) -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, count)]


async def test_every_document_ends_in_exactly_one_output(local_stack):
    pages = sample_pages(40)
    docs = [{"id": f"pipe-{p['id']}", "text": p["text"], "url": p["url"]} for p in pages]
    docs.append({"id": "pipe-short", "text": "too short to keep"})
    ids = await local_stack.produce(docs)
    found = await local_stack.wait_for_outputs(ids)

    placements = {doc_id: [role for role, messages in found.items() if doc_id in messages] for doc_id in ids}
    assert all(len(roles) == 1 for roles in placements.values()), placements
    assert placements["pipe-short"] == ["dropped"]
    assert found["refined"], "a real page mix must refine some pages"
    texts = {doc["id"]: doc["text"] for doc in docs}
    for doc_id, message in {**found["refined"], **found["dropped"]}.items():
        offline = execute_document(texts[doc_id], message["doc_program"], message["chunk_program"],
                                   message["keep_prob"])
        assert message["text"] == offline.text
        assert message["dropped"] == offline.dropped
        assert message["url"] == next(d.get("url") for d in docs if d["id"] == doc_id)


async def test_poison_messages_reach_the_dead_letter_topic_and_the_rest_flows(local_stack):
    good = [{"id": f"poison-good-{i}", "text": "A real sentence with enough words to keep it. " * 5} for i in range(5)]
    poison = {
        b"poison-notjson": b"{not json",
        b"poison-types": json.dumps({"id": "poison-types", "text": 42}).encode(),
        b"poison-notext": json.dumps({"id": "poison-notext"}).encode(),
        b"poison-version": json.dumps({"id": "poison-version", "text": "x", "v": 99}).encode(),
        b"poison-huge": json.dumps({"id": "poison-huge", "text": "word " * 1_000_000}).encode(),
    }
    await produce(local_stack.kafka, local_stack.topics.raw, list(poison.items()))
    ids = await local_stack.produce(good)
    found = await local_stack.wait_for_outputs(ids + [k.decode() for k in poison])

    letters = found["dlq"]
    assert {doc_id: letters[doc_id]["reason"] for doc_id in letters if doc_id.startswith("poison-")} == {
        "poison-notjson": "undecodable", "poison-types": "invalid_message", "poison-notext": "invalid_message",
        "poison-version": "unsupported_version", "poison-huge": "oversize",
    }
    huge = letters["poison-huge"]
    assert huge["truncated"] and huge["original_size"] == len(poison[b"poison-huge"])
    assert all(letter["source_topic"] == local_stack.topics.raw for letter in letters.values())
    assert set(ids) <= set(found["refined"]) | set(found["dropped"])


async def test_schema_validates_real_messages(local_stack):
    ids = await local_stack.produce([{"id": "schema-1", "text": "Plenty of words in this sentence, really. " * 4}])
    found = await local_stack.wait_for_outputs(ids)
    schemas = json_schemas()
    for role in ("refined", "dropped", "dlq"):
        for message in found[role].values():
            jsonschema.validate(message, schemas[role])
    jsonschema.validate({"text": "plain producer message"}, schemas["raw"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "no text"}, schemas["raw"])
