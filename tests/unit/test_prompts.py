"""Token-exact prompts of both levels against hand-written strings (a SentencePiece tokenizer trained here)."""
import pytest

from prox.models.prompts import chunk_prompt_ids, doc_prompt_ids, number_lines, split_chunks
from tests.helpers.tiny_llama import train_tokenizer

HEAD = "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    corpus = ["alpha beta gamma delta epsilon", "[000]x\n[001]x\n[002]x", "hello world"]
    return train_tokenizer(tmp_path_factory.mktemp("spm"), corpus)


def ids(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


def test_doc_prompt_is_llama2_chat_with_the_system_prompt(tokenizer):
    prompt = doc_prompt_ids(tokenizer, "hello world")
    assert prompt == ids(tokenizer, HEAD + "hello world [/INST]")
    assert prompt[0] == tokenizer.bos_token_id and prompt.count(tokenizer.bos_token_id) == 1


def test_fixed_doc_prompt_truncates_the_document_and_keeps_the_template(tokenizer):
    expected = HEAD + "alpha beta gamma [/INST]"
    limit = len(ids(tokenizer, expected))
    prompt = doc_prompt_ids(tokenizer, "alpha beta gamma delta epsilon", "fixed", max_tokens=limit)
    assert prompt == ids(tokenizer, expected)


def test_fixed_doc_prompt_leaves_a_fitting_document_whole(tokenizer):
    expected = HEAD + "alpha beta gamma delta epsilon [/INST]"
    prompt = doc_prompt_ids(tokenizer, "alpha beta gamma delta epsilon", "fixed", max_tokens=2000)
    assert prompt == ids(tokenizer, expected)


def test_original_doc_prompt_cuts_the_token_sequence_even_through_the_closing_tag(tokenizer):
    full = ids(tokenizer, HEAD + "alpha beta gamma delta epsilon [/INST]")
    prompt = doc_prompt_ids(tokenizer, "alpha beta gamma delta epsilon", "original", max_tokens=len(full) - 2)
    assert prompt == full[:-2]
    assert not tokenizer.decode(prompt).endswith("[/INST]")


def test_unknown_doc_prompt_mode_is_refused(tokenizer):
    with pytest.raises(ValueError, match="unknown doc prompt mode"):
        doc_prompt_ids(tokenizer, "x", "verbatim")


def test_lines_are_numbered_with_at_least_three_digits_and_no_space():
    assert number_lines("a\nb") == ["[000]a", "[001]b"]
    assert number_lines("\n" * 1000)[999:] == ["[999]", "[1000]"]


def test_chunk_prompt_wraps_numbered_lines_in_doc_tags(tokenizer):
    (chunk,) = split_chunks(tokenizer, "a\nb")
    assert chunk_prompt_ids(tokenizer, chunk) == ids(tokenizer, HEAD + "[doc]\n[000]a\n[001]b\n[/doc] [/INST]")


@pytest.fixture(scope="module")
def line_cost(tokenizer):
    # Every "[00i]x" line costs the same with the default special tokens (BOS included), as the original counts.
    costs = {len(tokenizer.encode(f"[{i:03d}]x")) for i in range(5)}
    assert len(costs) == 1
    return costs.pop()


def test_chunks_pack_lines_greedily_up_to_the_token_budget(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\nx\nx\nx\nx", max_tokens=2 * line_cost)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 1), (2, 3), (4, 4)]
    assert [c.text for c in chunks] == ["[000]x\n[001]x", "[002]x\n[003]x", "[004]x"]
    assert chunk_prompt_ids(tokenizer, chunks[1]) == ids(tokenizer, HEAD + "[doc]\n[002]x\n[003]x\n[/doc] [/INST]")


def test_one_token_under_the_budget_puts_every_line_alone(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\nx\nx", max_tokens=2 * line_cost - 1)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 0), (1, 1), (2, 2)]


def test_a_line_longer_than_the_budget_is_its_own_chunk(tokenizer, line_cost):
    chunks = split_chunks(tokenizer, "x\n" + "y" * 400 + "\nx", max_tokens=2 * line_cost)
    assert [(c.first_line, c.last_line) for c in chunks] == [(0, 0), (1, 1), (2, 2)]
    assert chunks[1].text == "[001]" + "y" * 400
