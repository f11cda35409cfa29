"""The ProX program language: every row of the specification's table, read by `parse_program`."""
import msgspec
import pytest

from prox.executor import ExecutorOptions, error_kind, execute_document, parse_program
from prox.executor.program import REMOVE_ALL, FUNCTIONS, _parse_call, parse_statement, StatementError


def single_call(statement):
    parsed = parse_program(statement)
    assert parsed.errors == [], parsed.errors
    assert len(parsed.calls) == 1
    return parsed.calls[0]


def single_error_kind(program, level="chunk"):
    parsed = parse_program(program, level)
    assert parsed.calls == []
    assert len(parsed.errors) == 1, parsed.errors
    return error_kind(parsed.errors[0].reason)


@pytest.mark.parametrize("statement", [
    "remove_lines(3, 7)",
    "remove_lines(line_start=3, line_end=7)",
    "remove_lines(start=3, end=7)",
    "remove_lines(start_line=3, end_line=7)",
    "remove_lines(3, end=7)",
    "remove_lines(start=3, line_end=7)",
    "remove_lines(line_end=7, line_start=3)",
    "   remove_lines(3, 7)",
    "remove_lines( 3 ,\t7 , )",
    "remove_lines(3, 7)  # navigation",
])
def test_remove_lines_forms_are_valid(statement):
    call = single_call(statement)
    assert (call.name, call.args) == ("remove_lines", (3, 7))


def test_remove_lines_all():
    assert single_call("remove_lines(all=True)").args == (REMOVE_ALL,)


@pytest.mark.parametrize("statement, expected", [
    ('normalize("a", "b")', ("a", "b")),
    ('normalize(source_str="a", target_str="b")', ("a", "b")),
    ('normalize(target_str="b", source_str="a")', ("a", "b")),
    ('normalize("a")', ("a", "")),
    ('normalize("a" "b", "c")', ("ab", "c")),
    ('normalize("x, y = f(z)", \'say "hi"\')', ("x, y = f(z)", 'say "hi"')),
    ('normalize("Ünïcødé — 日本語 🙂", "")', ("Ünïcødé — 日本語 🙂", "")),
    ('normalize("tab\\there", "\\u00e9")', ("tab\there", "é")),
])
def test_normalize_forms_are_valid(statement, expected):
    call = single_call(statement)
    assert (call.name, call.args) == ("normalize", expected)


@pytest.mark.parametrize("name", ["keep_chunk", "untouch_doc", "skip_chunk", "keep_doc", "keep_all"])
def test_chunk_no_ops_are_valid(name):
    assert single_call(f"{name}()").name == name


@pytest.mark.parametrize("statement, kind", [
    ("remove_lines(1, 2);", "syntax"),
    ("os.remove_lines(1, 2)", "not_a_call"),
    ("os.system('rm -rf /')", "not_a_call"),
    ("remove_lines(len(x), 2)", "bad_argument"),
    ("remove_lines(a, 2)", "bad_argument"),
    ("x = remove_lines(1, 2)", "syntax"),
    ("remove_line(1, 2)", "unknown_function"),
    ("__import__('os')", "unknown_function"),
    ("drop_doc()", "unknown_function"),
    ("remove_lines(first=1, last=2)", "unknown_argument"),
    ("normalize(src='a', tgt='b')", "unknown_argument"),
    ("remove_lines(line_start=1, line_start=2, line_end=3)", "duplicate_argument"),
    ("remove_lines(1, line_start=1, line_end=3)", "duplicate_argument"),
    ("remove_lines(start=1, line_start=1, line_end=3)", "duplicate_argument"),
    ("remove_lines(True, 3)", "bad_argument"),
    ("remove_lines(1, False)", "bad_argument"),
    ("remove_lines(1.0, 3)", "bad_argument"),
    ("remove_lines('1', 3)", "bad_argument"),
    ("remove_lines(-1, 3)", "out_of_range"),
    ("remove_lines(1, 2, 3)", "bad_argument"),
    ("remove_lines(1)", "bad_argument"),
    ("remove_lines()", "bad_argument"),
    ("remove_lines(all=False)", "bad_argument"),
    ("remove_lines(0, 3, all=True)", "bad_argument"),
    ("remove_lines(*[1, 2])", "bad_argument"),
    ("remove_lines(**{'line_start': 1})", "bad_argument"),
    ("normalize('', 'b')", "bad_argument"),
    ("normalize('   ', 'b')", "bad_argument"),
    ("normalize('a\\nb', 'c')", "bad_argument"),
    ("normalize('a', 'b\\nc')", "bad_argument"),
    ("normalize(b'a', 'b')", "bad_argument"),
    ("normalize(f'{x}', 'b')", "bad_argument"),
    ("normalize('a', 'b', 'c')", "bad_argument"),
    ("normalize()", "bad_argument"),
    ("keep_chunk(1)", "bad_argument"),
    ("remove_lines(007, 9)", "syntax"),
    ("remove_lines(1, 2) remove_lines(3, 4)", "syntax"),
    ("remove_lines(\x00)", "syntax"),
    ("remove_lines(1, 9" + "9" * 5000 + ")", "syntax"),
    ("f" + "(" * 300 + ")" * 300, "syntax"),
])
def test_invalid_statements_are_errors(statement, kind):
    assert single_error_kind(statement) == kind


def test_a_call_spread_over_three_lines_is_three_errors():
    parsed = parse_program("remove_lines(\n  1,\n  2)")
    assert parsed.calls == []
    assert len(parsed.errors) == 3


def test_truncated_last_statement_is_one_error():
    parsed = parse_program("remove_lines(1, 2)\nnormalize(\"Read mo")
    assert [call.name for call in parsed.calls] == ["remove_lines"]
    assert [error_kind(error.reason) for error in parsed.errors] == ["truncated"]


def test_unclosed_statement_before_the_end_is_a_syntax_error():
    parsed = parse_program("remove_lines(1, 2\nremove_lines(3, 4)")
    assert [error_kind(error.reason) for error in parsed.errors] == ["syntax"]


def test_blank_lines_comments_and_fences_are_ignored():
    parsed = parse_program("```python\n\n# remove the menu\n  \nremove_lines(0, 1)\n```")
    assert parsed.errors == []
    assert [call.statement for call in parsed.calls] == ["remove_lines(0, 1)"]


def test_repeated_statements_are_applied_and_counted_once():
    parsed = parse_program("remove_lines(0, 1)\n  remove_lines(0, 1)\nfoo()\nfoo()\nfoo() ")
    assert len(parsed.calls) == 1
    assert len(parsed.errors) == 1


def test_doc_level_knows_only_the_decisions():
    assert [c.name for c in parse_program("drop_doc()\nkeep_doc()", "doc").calls] == ["drop_doc", "keep_doc"]
    assert single_error_kind("remove_lines(1, 2)", "doc") == "unknown_function"


def test_error_statements_are_bounded():
    parsed = parse_program("x" * 10_000)
    assert len(parsed.errors[0].statement) < 400


@pytest.mark.parametrize("reason, kind", [("syntax: invalid", "syntax"), ("clamped: 9 to 5", "clamped"),
                                          ("no colon", "no colon")])
def test_error_kind_is_the_prefix(reason, kind):
    assert error_kind(reason) == kind


FAST_PATH_STATEMENTS = [
    "remove_lines(0, 0)", "remove_lines(12,345)", "remove_lines(1, 2,)", "remove_lines(1 ,2 )",
    "keep_chunk()", "keep_doc( )", "normalize('a')", 'normalize("a", "b")', "normalize('a',)",
    "normalize(' ', 'b')", "normalize('x\ty', \"'\")", "remove_lines(2, 1)",
]


@pytest.mark.parametrize("statement", FAST_PATH_STATEMENTS)
def test_fast_path_agrees_with_the_ast_path(statement):
    def outcome(parse):
        try:
            return parse()
        except StatementError as exc:
            return exc.args[0]

    fast = outcome(lambda: parse_statement(statement))
    slow = outcome(lambda: _parse_call(statement, FUNCTIONS["chunk"], False))
    assert fast == slow


@pytest.mark.parametrize("statement", ['normalize("\\udc00", "x")', 'normalize("a", "\\udc00")',
                                       'normalize(source_str="a", target_str="\\ud800\\udc00")'])
def test_unencodable_normalize_strings_are_bad_arguments(statement):
    parsed = parse_program(statement)
    assert parsed.calls == []
    assert [error.reason.split(":")[0] for error in parsed.errors] == ["bad_argument"]


@pytest.mark.parametrize("chunk_program", ['normalize("a", "\\udc00")', 'normalize("\udc00", "x")',
                                           "remove_lines(0, 1)\n\udc00", "untouch_doc()\ud800"])
def test_unencodable_programs_execute_and_report_as_utf8(chunk_program):
    execution = execute_document("a b c\nd e f", "keep_doc()", chunk_program, options=ExecutorOptions(min_words=0))
    assert execution.report.chunk_errors == 1
    msgspec.json.encode(execution.report).decode("utf-8")  # the report can always be written
    (execution.text or "").encode("utf-8")
