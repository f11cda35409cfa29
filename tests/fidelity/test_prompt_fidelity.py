"""Token-identical prompts: ours (`PromptBuilder`, the hf backend's code path) against the original ProX inference's,
rebuilt independently with transformers 4.39.1 (reference_ids.py in .venv-fidelity), over real pages of every HPLT
language, WCXB pages and edge cases, for a model folder in the hub layout and in the save_pretrained layout.
"""
import gzip
import itertools
import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from prox.models.prompts import PromptBuilder
from prox.models.tokenizer import load_prox_tokenizer

pytestmark = pytest.mark.fidelity

WCXB_PAGES = 300
HPLT_PER_LANGUAGE = 12
TRAILING_WHITESPACE = [" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f",
                       "\x85", "\u00a0", "\u1680", "\u2000", "\u2007", "\u200a", "\u2028", "\u2029", "\u202f",
                       "\u205f", "\u3000", " \n \t\u00a0", "\u200b", "\ufeff"]  # the last two are not whitespace
LONG_LINE = " ".join(f"word{i}" for i in range(1200))  # over 1,500 tokens on one line
SPECIAL_TEXTS = ["<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<<SYS>>", "x</s> y", "a<s>b", "</s></s>  </s>",
                 "<s> starts", "ends </s>", "[INST] do this [/INST] done", "line\n<s>\n</s>\n[/doc]", "\u2581a \u2581b"]


def edge_cases() -> list[str]:
    texts = [f"Some text{ws}" for ws in TRAILING_WHITESPACE] + [f"{ws}leading" for ws in TRAILING_WHITESPACE[:6]]
    texts += ["", " ", "\n", "\n\n\n", "\t \n", "\u3000", "\u00a0\n\u00a0"]
    texts += SPECIAL_TEXTS
    texts += ["a  b", "a   b    c", "two  spaces\n  indented\n\ttabbed  ", "emoji \U0001f600 and \u00e9\u0301 cafe\u0301",
              "\u4e2d\u6587\u6587\u672c\u3002\n\u65e5\u672c\u8a9e", "\x00 nul \x07 bell"]
    texts += [LONG_LINE, f"short\n{LONG_LINE}\nshort again", f"{LONG_LINE} {LONG_LINE}", f"{LONG_LINE}\n{LONG_LINE}"]
    texts += ["\n".join(f"Line {i} of a long document with several words." for i in range(400))]  # > 2,000 tokens
    texts += ["\n".join("x" for _ in range(1200))]  # line numbers past 999
    return texts


def real_pages(shared: Path) -> list[tuple[str, str]]:
    pages = []
    with gzip.open(shared / "wcxb-dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        pages += [(doc["id"], doc["text"]) for doc in map(json.loads, itertools.islice(handle, WCXB_PAGES))]
    per_language = defaultdict(list)
    with gzip.open(shared / "hplt-inspection.jsonl.gz", "rt", encoding="utf-8") as handle:
        for doc in map(json.loads, handle):
            if len(per_language[doc["meta"]["lang"]]) < HPLT_PER_LANGUAGE:
                per_language[doc["meta"]["lang"]].append((doc["id"], doc["text"]))
    return pages + [page for language in sorted(per_language) for page in per_language[language]]


@pytest.fixture(scope="module")
def documents(tmp_path_factory, shared_data) -> Path:
    docs = [(f"edge-{i}", text) for i, text in enumerate(edge_cases())] + real_pages(shared_data)
    path = tmp_path_factory.mktemp("fidelity") / "documents.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    return path


def reference_ids(fidelity_python: Path, tokenizer_dir: Path, documents: Path, output: Path) -> Path:
    script = Path(__file__).with_name("reference_ids.py")
    subprocess.run([str(fidelity_python), str(script), str(tokenizer_dir), str(documents), str(output)],
                   check=True, capture_output=True, timeout=900)
    return output


@pytest.fixture(scope="module")
def original(documents, fidelity_python, hub_layout, tmp_path_factory) -> list[dict]:
    output = reference_ids(fidelity_python, hub_layout, documents, tmp_path_factory.mktemp("ref") / "original.jsonl")
    return [json.loads(line) for line in output.read_text().splitlines()]


def ours(model_dir: Path, documents: Path) -> list[dict]:
    builder = PromptBuilder(load_prox_tokenizer(model_dir))
    rows = []
    for doc in map(json.loads, documents.read_text().splitlines()):
        chunks = [{"first_line": c.first_line, "last_line": c.last_line, "ids": c.ids}
                  for c in builder.chunk_prompts(doc["text"])]
        rows.append({"id": doc["id"], "doc": builder.doc_ids(doc["text"]), "chunks": chunks})
    return rows


def mismatches(expected: list[dict], actual: list[dict]) -> dict[str, list[str]]:
    assert [row["id"] for row in actual] == [row["id"] for row in expected]
    doc = [a["id"] for a, e in zip(actual, expected) if a["doc"] != e["doc"]]
    chunk = [f"{a['id']}#{i}" for a, e in zip(actual, expected)
             for i, (mine, theirs) in enumerate(itertools.zip_longest(a["chunks"], e["chunks"])) if mine != theirs]
    return {"doc": doc, "chunk": chunk}


def summary(expected: list[dict], wrong: dict[str, list[str]]) -> str:
    chunks = sum(len(row["chunks"]) for row in expected)
    return (f"{len(expected) - len(wrong['doc'])} of {len(expected)} doc prompts and "
            f"{chunks - len(wrong['chunk'])} of {chunks} chunk prompts identical")


@pytest.mark.parametrize("layout", ["hub_layout", "save_pretrained_layout"])
def test_prompts_are_token_identical_to_the_original(request, layout, documents, original):
    wrong = mismatches(original, ours(request.getfixturevalue(layout), documents))
    print(f"{layout}: {summary(original, wrong)}")
    assert wrong == {"doc": [], "chunk": []}, summary(original, wrong)


def test_the_corpus_covers_the_hard_cases(original):
    doc_lengths = [len(row["doc"]) for row in original]
    chunk_lengths = [len(chunk["ids"]) for row in original for chunk in row["chunks"]]
    assert max(doc_lengths) == 2000  # truncated documents
    assert max(chunk_lengths) > 2048  # at least one chunk the model never sees
    assert any(row["chunks"] == [] for row in original)  # the empty document
    assert sum(1 for row in original if len(row["chunks"]) > 1) >= 5  # multi-chunk documents
