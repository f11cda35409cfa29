"""Token-exact prompts of both stages, the tokenizer's two encode rules, and `prox prompts`.

Most tests use a SentencePiece tokenizer trained here; those marked with `llama2` check known ids of the real
Llama-2 tokenizer (../shared/llama2-tokenizer, test use only) and skip without it. The full comparison with the
original ProX stack is tests/fidelity.
"""
import gzip
import itertools
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prox.cli.main import main
from prox.models.prompts import (
    CONTEXT_TOKENS, PromptBuilder, chat_prompt, load_prompt_builder, number_lines, split_chunks,
)
from prox.models.tokenizer import TokenizerLoadError, converted_merges, load_prox_tokenizer
from tests.fidelity.paths import HUB_FILES, LLAMA2_TOKENIZER
from tests.fixtures.paths import REPO
from tests.helpers.tiny_llama import train_tokenizer

HEAD = "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
CORPUS = ["alpha beta gamma delta epsilon", "[000]x\n[001]x\n[002]x", "hello world"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-tokenizer")
    train_tokenizer(directory, CORPUS)
    (directory / "config.json").write_text(json.dumps({"max_position_embeddings": 300}))
    return directory


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return load_prox_tokenizer(model_dir)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return PromptBuilder(tokenizer)


# --- the doc prompt ------------------------------------------------------------------------------------
def test_doc_prompt_is_the_slow_encoded_llama2_chat_template(tokenizer, prompts):
    assert prompts.doc_ids("hello world") == tokenizer.slow_encode(HEAD + "hello world [/INST]")
    assert prompts.doc_ids("hello world")[0] == tokenizer.bos_token_id
    assert prompts.doc_ids("hello world").count(tokenizer.bos_token_id) == 1


def test_the_template_strips_trailing_whitespace_of_the_document_as_python_does():
    assert chat_prompt("text \n\u00a0\u3000") == HEAD + "text [/INST]"
    assert chat_prompt("") == HEAD.rstrip("\n") + " [/INST]"  # an empty document loses the "\n\n" too
    assert chat_prompt(" \t\n") == chat_prompt("")


def test_original_doc_prompt_cuts_the_token_sequence_even_through_the_closing_tag(tokenizer):
    full = tokenizer.slow_encode(HEAD + "alpha beta gamma delta epsilon [/INST]")
    cut = PromptBuilder(tokenizer, doc_max_tokens=len(full) - 2).doc_ids("alpha beta gamma delta epsilon")
    assert cut == full[:-2]
    assert not tokenizer.decode(cut).endswith("[/INST]")


def test_fixed_doc_prompt_shortens_the_document_and_keeps_the_template(tokenizer):
    expected = tokenizer.slow_encode(HEAD + "alpha beta gamma [/INST]")
    fixed = PromptBuilder(tokenizer, "fixed", doc_max_tokens=len(expected))
    assert fixed.doc_ids("alpha beta gamma delta epsilon") == expected
    assert fixed.doc_ids("hello world") == PromptBuilder(tokenizer).doc_ids("hello world")  # fits: unchanged


def test_unknown_prompt_format_is_refused(tokenizer):
    with pytest.raises(ValueError, match="unknown prompt format"):
        PromptBuilder(tokenizer, "verbatim")


# --- the doc prompt of a long page: only what the 2,000-id cut keeps is encoded -------------------------------
TRICKY = ["alpha", "beta", " ", "  ", "\n", "\t", "\u2581", "<s>", "</s>", "<unk>", "\u00e9t\u00e9", "\u6f22\u5b57",
          "\U0001f600", "[/INST]", "x", "1234", "\u00a0", "\u3000"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(TRICKY), max_size=80), count=st.integers(1, 60))
def test_the_head_of_a_slow_encoding_is_the_cut_of_the_whole_one(tokenizer, parts, count):
    text = "".join(parts)
    assert tokenizer.cuts_at_spaces
    assert tokenizer.slow_encode_head(text, count) == tokenizer.slow_encode(text)[:count]


def test_a_long_page_encodes_only_about_what_the_cut_keeps(tokenizer, monkeypatch):
    page = "\n".join(f"alpha beta  gamma {i} delta\u2581epsilon </s> hello world" for i in range(3000))
    builder = PromptBuilder(tokenizer, doc_max_tokens=300)
    expected = tokenizer.slow_encode(chat_prompt(page))[:300]
    encoded = []
    segment_encoder = tokenizer._encode_segment
    monkeypatch.setattr(tokenizer, "_encode_segment", lambda segment: encoded.append(segment) or
                        segment_encoder(segment))
    assert builder.doc_ids(page) == expected
    assert sum(map(len, encoded)) < len(page) / 20


def test_a_vocabulary_that_joins_a_character_to_the_next_space_encodes_the_whole_text(tmp_path):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "a": 4, "b": 5, "a\u2581": 6, "\u2581b": 7, "a\u2581b": 8}
    merges = [["a", "\u2581"], ["a\u2581", "b"], ["\u2581", "b"]]
    spec = {"model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    joined = load_prox_tokenizer(tmp_path)
    assert not joined.cuts_at_spaces
    assert joined.slow_encode("a ba b") == [3, 8, 8]  # "a" + "▁b" merged across the space
    assert joined.slow_encode("a") == [3, 4]  # so the text cut before that space would encode otherwise
    assert joined.slow_encode_head("a ba b", 2) == [3, 8]


# --- the chunk prompts ---------------------------------------------------------------------------------
def test_lines_are_numbered_with_at_least_three_digits_and_no_space():
    assert number_lines("a\nb") == ["[000]a", "[001]b"]
    assert number_lines("\n" * 1000)[999:] == ["[999]", "[1000]"]


def test_chunk_prompt_is_the_fast_encoded_template_with_bos_added(tokenizer, prompts):
    (chunk,) = prompts.chunk_prompts("a\nb")
    assert chunk.ids == tokenizer.fast_encode(HEAD + "[doc]\n[000]a\n[001]b\n[/doc] [/INST]")
    assert chunk.ids[:2] == [tokenizer.bos_token_id] * 2  # BOS added, then the template's own <s>
    assert (chunk.first_line, chunk.last_line, chunk.sent) == (0, 1, True)


@pytest.fixture(scope="module")
def line_cost(tokenizer):
    # Every "[00i]x" line costs the same with BOS counted, as the original counts.
    costs = {len(tokenizer.fast_encode(f"[{i:03d}]x")) for i in range(5)}
    assert len(costs) == 1
    return costs.pop()


def test_chunks_pack_lines_greedily_up_to_the_token_budget(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\nx\nx\nx\nx", max_tokens=2 * line_cost)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 1), (2, 3), (4, 4)]
    assert [c.text for c in chunks] == ["[000]x\n[001]x", "[002]x\n[003]x", "[004]x"]


def test_one_token_under_the_budget_puts_every_line_alone(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\nx\nx", max_tokens=2 * line_cost - 1)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 0), (1, 1), (2, 2)]


def test_a_line_longer_than_the_budget_is_its_own_chunk(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\n" + "y" * 400 + "\nx", max_tokens=2 * line_cost)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 0), (1, 1), (2, 2)]


def test_an_empty_document_has_no_chunk_but_a_blank_one_has(prompts):
    assert prompts.chunk_prompts("") == []
    assert [(c.first_line, c.last_line) for c in prompts.chunk_prompts(" \n")] == [(0, 1)]


def test_a_chunk_prompt_longer_than_the_context_is_not_sent(tokenizer):
    text = "alpha " * 100
    (chunk,) = PromptBuilder(tokenizer, context_tokens=80).chunk_prompts(text)
    assert len(chunk.ids) > 80 and not chunk.sent
    (exact,) = PromptBuilder(tokenizer, context_tokens=len(chunk.ids)).chunk_prompts(text)
    assert exact.sent  # a prompt of exactly the context still goes


# --- the tokenizer -------------------------------------------------------------------------------------
def test_special_tokens_inside_text_are_special_and_the_fast_rule_prepends_a_space_after_them(tokenizer):
    eos, underline = tokenizer.eos_token_id, tokenizer.token_to_id("\u2581")
    fast = tokenizer.fast_encode("x</s> y", add_bos=False)
    assert fast[fast.index(eos) + 1] == underline  # "▁" then "▁y"
    slow = tokenizer.slow_encode("x</s> y")
    assert slow[slow.index(eos) + 1:] == tokenizer.slow_encode("y")  # no extra "▁" in the slow rule


def test_merges_follow_the_merged_pieces_scores_then_the_split_ids():
    pieces = ["<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "abc"]
    scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0]
    assert converted_merges(pieces, scores) == [("a", "b"), ("b", "c"), ("a", "bc"), ("ab", "c")]


@pytest.mark.parametrize("files,message", [
    ((), "neither tokenizer.model nor tokenizer.json"),
    (("tokenizer.model",), "is not a SentencePiece model"),
    (("tokenizer.json",), "is not a BPE tokenizer.json"),
])
def test_a_folder_without_a_usable_tokenizer_is_one_clear_error(tmp_path, files, message):
    for name in files:
        (tmp_path / name).write_text("not a tokenizer")
    with pytest.raises(TokenizerLoadError, match=message):
        load_prox_tokenizer(tmp_path)


def test_the_context_comes_from_config_json(model_dir, tmp_path):
    assert load_prompt_builder(model_dir).context_tokens == 300
    shutil.copy(model_dir / "tokenizer.model", tmp_path / "tokenizer.model")
    with pytest.raises(TokenizerLoadError, match="config.json"):
        load_prompt_builder(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert load_prompt_builder(tmp_path).context_tokens == CONTEXT_TOKENS


@pytest.fixture(scope="module")
def llama2(tmp_path_factory):
    if not (LLAMA2_TOKENIZER / "tokenizer.model").exists():
        pytest.skip(f"the Llama-2 tokenizer is not at {LLAMA2_TOKENIZER} (test use only, see its NOTICE.md)")
    folder = tmp_path_factory.mktemp("llama2-hub")
    for name in HUB_FILES:
        shutil.copy(LLAMA2_TOKENIZER / name, folder / name)
    return load_prox_tokenizer(folder)


def test_llama2_known_ids_of_both_rules(llama2):
    assert llama2.fast_encode("a  b", add_bos=False) == [263, 29871, 289]  # not transformers 5's 263 259 29890
    assert llama2.fast_encode("x</s> y", add_bos=False)[1:] == [2, 29871, 343]
    assert PromptBuilder(llama2).doc_ids("hello")[:2] == [1, 29961]  # "[" without a prefix space after <s>
    assert PromptBuilder(llama2).chunk_prompts("hello")[0].ids[:3] == [1, 1, 518]  # "▁[" after <s>


def test_llama2_doc_prompts_of_long_real_pages_are_unchanged(llama2):
    """The doc ids of the WCXB pages longer than the cut, against the whole page encoded and cut (both rules)."""
    pages_file = REPO.parent / "shared" / "data" / "wcxb-dev.jsonl.gz"
    if not pages_file.exists():
        pytest.skip(f"{pages_file} is missing")
    with gzip.open(pages_file, "rt", encoding="utf-8") as handle:
        pages = [json.loads(line)["text"] for line in itertools.islice(handle, 400)]
    builder = PromptBuilder(llama2)
    long_pages = [page for page in pages if len(llama2.slow_encode(chat_prompt(page))) > 2000]
    assert len(long_pages) > 50 and llama2.cuts_at_spaces
    for page in long_pages:
        assert builder.doc_ids(page) == llama2.slow_encode(chat_prompt(page))[:2000]


# --- prox prompts ----------------------------------------------------------------------------------------
TEXTS = {"d1": "hello world\nalpha beta", "d2": "", "d3": "x\n" + "alpha " * 2000}


@pytest.fixture
def documents(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"id": i, "text": t}) + "\n" for i, t in TEXTS.items())
    return path


def run_prompts(capsys, *args):
    code = main(["prompts", *map(str, args)])
    return code, capsys.readouterr().err


def test_prox_prompts_writes_the_backend_ids_in_input_order(model_dir, documents, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code, _ = run_prompts(capsys, "--model", model_dir, "--input", documents, "--output", out)
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    builder = load_prompt_builder(model_dir)
    assert [row["id"] for row in rows] == list(TEXTS)
    for row, text in zip(rows, TEXTS.values()):
        assert row["doc"] == {"ids": builder.doc_ids(text)}
        assert row["chunks"] == [{"first_line": c.first_line, "last_line": c.last_line, "ids": c.ids, "sent": c.sent}
                                 for c in builder.chunk_prompts(text)]
    assert rows[1]["chunks"] == []
    assert [c["sent"] for c in rows[2]["chunks"]] == [True, False]  # the context of model_dir is 300


def test_prox_prompts_stage_and_format_options(model_dir, documents, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert run_prompts(capsys, "--model", model_dir, "--input", documents, "--output", out, "--stages", "doc",
                       "--format", "fixed")[0] == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"id", "doc"}
    assert first["doc"]["ids"] == PromptBuilder(load_prox_tokenizer(model_dir), "fixed").doc_ids(TEXTS["d1"])


@pytest.mark.parametrize("problem", ["missing model", "no tokenizer", "missing input", "bad line", "bad stages"])
def test_prox_prompts_errors_are_one_line_and_exit_2(problem, model_dir, documents, tmp_path, capsys):
    model, source, stages = model_dir, documents, "doc,chunk"
    if problem == "missing model":
        model = tmp_path / "nowhere"
    elif problem == "no tokenizer":
        model = tmp_path
    elif problem == "missing input":
        source = tmp_path / "nothing.jsonl"
    elif problem == "bad line":
        source = tmp_path / "bad.jsonl"
        source.write_text('{"id": "a", "text": "ok"}\n{"id": "b"}\n')
    else:
        stages = "doc,words"
    code, err = run_prompts(capsys, "--model", model, "--input", source, "--output", tmp_path / "o.jsonl",
                            "--stages", stages)
    assert code == 2
    assert err.startswith("prox prompts: error: ") and err.strip().count("\n") == 0
    assert not (tmp_path / "o.jsonl").exists()


# --- the engine's length buckets -------------------------------------------------------------------------
def test_length_buckets_group_similar_lengths_under_the_row_and_token_limits():
    from prox.models.engine import length_buckets

    lengths = [50, 10, 2000, 12, 11, 49, 3000]
    groups = length_buckets(lengths, max_rows=2, token_budget=2500)
    assert groups == [[1, 4], [3, 5], [0], [2], [6]]  # shortest first; 3,000 alone although over the budget
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    assert all(len(g) * max(lengths[i] for i in g) <= 2500 for g in groups if len(g) > 1)
