"""Executing programs on documents: doc level, chunk level, the final decision, options and the report."""

import msgspec
import pytest

from prox.executor import ExecutorOptions, count_words, execute_document
from prox_proto import ExecutionReport
from prox_proto.schema import json_schemas

NO_DROP = ExecutorOptions(min_words=0, min_keep_ratio=0.0)
LINES = [f"line {i} says something fairly ordinary here" for i in range(10)]
DOC = "\n".join(LINES)


def chunk(program, text=DOC, options=NO_DROP, **kwargs):
    return execute_document(text, None, program, options=options, **kwargs)


def kinds(execution):
    return [error.reason.split(":")[0] for error in execution.report.errors]


# --- words ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("", 0), ("   \n\t ", 0), ("one", 1), ("  two  words ", 2), ("GPT-4は強い", 4), ("中文网页没有空格", 8),
    ("한국어 텍스트", 6), ("a\u00a0b\u3000c", 3), ("emoji🙂word 🙂", 2), ("カタカナ", 4), ("x\u2028y", 2),
])
def test_count_words(text, words):
    assert count_words(text) == words


# --- doc level -------------------------------------------------------------------------------

@pytest.mark.parametrize("program, dropped", [
    ("drop_doc()", True), ("keep_doc()", False), ("keep_doc()\ndrop_doc()", False),
    ("drop_doc(1)\nkeep_doc()", False), ("```\ndrop_doc()\n```", True),
])
def test_first_valid_decision_decides(program, dropped):
    execution = execute_document(DOC, program, options=NO_DROP)
    assert execution.dropped is dropped
    assert execution.report.doc_errors == 0
    assert execution.report.drop_reason == ("doc_program" if dropped else None)


@pytest.mark.parametrize("program, dropped", [
    ("", False), ("the page should be dropped", True), ("drop_doc(", True), ("DROP_DOC()", False),
    ("keep_doc(", False), ("drop_doc(reason='spam')", True),
])
def test_without_a_valid_decision_the_drop_substring_decides_with_one_error(program, dropped):
    execution = execute_document(DOC, program, options=NO_DROP)
    assert execution.dropped is dropped
    assert execution.report.doc_errors == 1
    assert kinds(execution) == ["no_decision"]


def test_no_doc_program_keeps():
    execution = execute_document(DOC, None, options=NO_DROP)
    assert (execution.dropped, execution.text, execution.report.outcome) == (False, DOC, "kept")


def test_doc_drop_skips_the_chunk_program():
    execution = execute_document(DOC, "drop_doc()", "remove_lines(0, 1)")
    assert execution.text is None and execution.report.lines_removed == 0
    assert execution.report.outcome == "dropped"


@pytest.mark.parametrize("keep_prob, threshold, dropped", [(0.7, 0.5, False), (0.5, 0.5, False), (0.3, 0.5, True)])
def test_keep_threshold_overrides_the_doc_program(keep_prob, threshold, dropped):
    options = msgspec.structs.replace(NO_DROP, keep_threshold=threshold)
    program = "keep_doc()" if dropped else "drop_doc()"
    assert execute_document(DOC, program, keep_prob=keep_prob, options=options).dropped is dropped


def test_keep_prob_without_threshold_is_not_a_decision():
    assert not execute_document(DOC, "keep_doc()", keep_prob=0.0, options=NO_DROP).dropped


# --- chunk level: removals -------------------------------------------------------------------

def test_removals_use_original_line_numbers():
    execution = chunk("remove_lines(2, 3)\nremove_lines(0, 0)\nremove_lines(8, 9)")
    assert execution.text == "\n".join([LINES[1]] + LINES[4:8])
    assert execution.report.lines_removed == 5
    assert execution.report.outcome == "edited"


def test_overlapping_removals_count_lines_once():
    execution = chunk("remove_lines(1, 4)\nremove_lines(3, 6)")
    assert execution.text == "\n".join([LINES[0]] + LINES[7:])
    assert execution.report.lines_removed == 6


def test_remove_all():
    execution = chunk("remove_lines(all=True)")
    assert execution.report.lines_removed == 10
    assert execution.report.drop_reason == "keep_ratio"  # 0 kept words: ratio 0 <= any threshold


def test_end_past_the_last_line_is_clamped_with_one_error():
    execution = chunk("remove_lines(8, 50)")
    assert execution.text == "\n".join(LINES[:8])
    assert kinds(execution) == ["clamped"]
    assert not execution.report.program_ignored


@pytest.mark.parametrize("program", ["remove_lines(5, 4)", "remove_lines(10, 12)"])
def test_impossible_ranges_are_errors(program):
    execution = chunk(program)
    assert execution.text == DOC and kinds(execution) == ["out_of_range"]


def test_empty_lines_and_trailing_newline_are_lines():
    text = "a\n\nb\n"
    assert chunk("remove_lines(1, 1)", text).text == "a\nb\n"
    assert chunk("remove_lines(3, 3)", text).text == "a\n\nb"
    assert chunk("remove_lines(0, 0)", text).text == "\nb\n"


# --- chunk level: normalize ------------------------------------------------------------------

def test_normalize_runs_after_removals_in_program_order():
    text = "menu\nRead more: cats\nRead more: dogs"
    execution = chunk('normalize("Read more: ", "")\nremove_lines(0, 0)\nnormalize("cats", "dogs")', text)
    assert execution.text == "dogs\ndogs"
    report = execution.report
    assert (report.chars_removed, report.chars_added) == (len(text) - len("dogs\ndogs") + 4, 4)


def test_normalize_replaces_every_occurrence_and_sees_earlier_replacements():
    execution = chunk('normalize("a", "b")\nnormalize("bb", "c")', "abb\nxa")
    assert execution.text == "cb\nxb"


def test_normalize_source_must_occur_in_the_original():
    execution = chunk('normalize("nowhere", "x")\nremove_lines(0, 0)')
    assert kinds(execution) == ["normalize_source_missing"]
    assert execution.text == "\n".join(LINES[1:])


def test_normalize_source_in_a_removed_line_is_not_an_error():
    execution = chunk('remove_lines(0, 0)\nnormalize("line 0", "x")')
    assert execution.report.errors == [] and execution.text == "\n".join(LINES[1:])


def test_deletion_only():
    options = msgspec.structs.replace(NO_DROP, deletion_only=True, max_errors=5)
    execution = chunk('normalize("line 1 says", "line 1")\nnormalize("line 2", "line two")', options=options)
    assert kinds(execution) == ["not_deletion"]
    assert LINES[1].replace("line 1 says", "line 1") in execution.text and LINES[2] in execution.text


def test_max_growth():
    options = msgspec.structs.replace(NO_DROP, max_growth=1.0, max_errors=5)
    execution = chunk('normalize("line", "LINE")\nnormalize("says", "says a lot")', options=options)
    assert kinds(execution) == ["growth"]
    assert execution.text == DOC.replace("line", "LINE")


# --- ignoring a program ----------------------------------------------------------------------

def test_program_with_max_errors_is_ignored():
    execution = chunk("remove_lines(0, 3)\nfoo()\nremove_lines(1, 99)")
    report = execution.report
    assert execution.text == DOC
    assert report.program_ignored and report.chunk_errors == 2 and report.outcome == "kept"
    assert (report.lines_removed, report.calls_applied) == (0, 0)


def test_max_errors_option():
    options = msgspec.structs.replace(NO_DROP, max_errors=3)
    assert not chunk("remove_lines(0, 3)\nfoo()\nbar()", options=options).report.program_ignored


def test_empty_chunk_program_is_no_edit_and_no_error():
    execution = chunk("")
    assert execution.text == DOC and execution.report.errors == [] and execution.report.outcome == "kept"


def test_duplicate_error_counts_once():
    assert not chunk("foo()\nfoo()\nremove_lines(0, 0)").report.program_ignored


# --- final decision --------------------------------------------------------------------------

def test_keep_ratio_drop():
    execution = execute_document(DOC, None, "remove_lines(0, 9)\nkeep_chunk()", options=ExecutorOptions(min_words=0))
    assert execution.dropped and execution.report.drop_reason == "keep_ratio"


def test_keep_ratio_boundary_is_inclusive():
    text = "\n".join(["w"] * 19 + ["w"])  # 20 words, one per line
    options = ExecutorOptions(min_words=0, min_keep_ratio=0.05)
    assert execute_document(text, None, "remove_lines(0, 18)", options=options).report.drop_reason == "keep_ratio"
    assert not execute_document(text, None, "remove_lines(0, 17)", options=options).dropped


def test_ignored_program_is_not_judged_by_keep_ratio():
    execution = execute_document(DOC, None, "remove_lines(all=True)\nfoo()\nbar()", options=ExecutorOptions(min_words=0))
    assert not execution.dropped and execution.report.program_ignored


@pytest.mark.parametrize("text, dropped", [("ten words " * 1, True), ("w " * 10, True), ("w " * 11, False), ("", True)])
def test_min_words(text, dropped):
    execution = execute_document(text)
    assert execution.dropped is dropped
    assert execution.report.drop_reason == ("min_words" if dropped else None)


def test_min_words_applies_after_editing():
    execution = execute_document(DOC, "keep_doc()", "remove_lines(0, 8)", options=ExecutorOptions(min_keep_ratio=0))
    assert execution.dropped and execution.report.drop_reason == "min_words"


def test_cjk_page_is_not_dropped_for_lacking_spaces():
    assert not execute_document("中文网页没有空格但是内容很多很多的").dropped


# --- report ----------------------------------------------------------------------------------

def test_report_counts():
    execution = execute_document(DOC, "keep_doc()", 'remove_lines(0, 1)\nnormalize("ordinary", "plain")\nkeep_chunk()',
                                 options=NO_DROP)
    report = execution.report
    assert report.calls_applied == 4
    assert report.words_in == count_words(DOC) and report.words_out == count_words(execution.text)
    assert len(execution.text) == len(DOC) - report.chars_removed + report.chars_added


def test_report_matches_its_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    execution = chunk("remove_lines(0, 50)\nfoo(")
    payload = msgspec.json.decode(msgspec.json.encode(execution.report))
    jsonschema.validate(payload, json_schemas()["execution_report"])
    assert msgspec.json.decode(msgspec.json.encode(execution.report), type=ExecutionReport) == execution.report


def test_options_validate():
    with pytest.raises(ValueError):
        ExecutorOptions(max_errors=0)
    with pytest.raises(AttributeError):  # immutable
        ExecutorOptions().max_errors = 3
