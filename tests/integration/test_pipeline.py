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
from tests.fixtures.scenarios import poison_scenario

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
    assert set(ids) & set(found["refined"]), "a real page mix must refine some pages"
    for doc in docs:  # the session's stack also carries other tests' documents: check ours
        message = found[placements[doc["id"]][0]][doc["id"]]
        offline = execute_document(doc["text"], message["doc_program"], message["chunk_program"],
                                   message["keep_prob"])
        assert message["text"] == offline.text
        assert message["dropped"] == offline.dropped
        assert message["url"] == doc.get("url")


async def test_poison_messages_reach_the_dead_letter_topic_and_the_rest_flows(local_stack):
    # Tansu does not enforce max.message.bytes, so the services' own size limit must catch this one.
    huge = json.dumps({"id": "poison-huge", "text": "word " * 1_000_000}).encode()
    letters = await poison_scenario(local_stack, "poison", huge=huge)
    assert letters["poison-huge"]["truncated"] and letters["poison-huge"]["original_size"] == len(huge)


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
