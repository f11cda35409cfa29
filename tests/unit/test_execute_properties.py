"""Property tests: random and adversarial programs never raise, never execute anything, and only ever
delete whole lines or apply the program's own replacements."""
import ast
import builtins
import contextlib
import itertools
import re
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox.executor import ExecutorOptions, count_words, execute_document, parse_program
from prox.executor.program import FUNCTIONS, StatementError, _parse_call, parse_statement
from prox.executor.textindex import TextIndex, merge_ranges

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEVER_DROP = ExecutorOptions(min_words=0, min_keep_ratio=-1.0, max_errors=10**6)
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
PWNED = Path("/tmp/prox-pwned")  # what the adversarial statements below try to create
REFERENCE_WORD = re.compile(f"[{CJK}]|[^\\s{CJK}]+")

# Documents over a small alphabet (spaces, CJK, emoji, non-breaking space) so normalize sources occur.
line_text = st.text(alphabet="ab c\u3042\u00a0\U0001f642,", max_size=12)
documents = st.lists(line_text, min_size=1, max_size=12).map("\n".join)

integers = st.one_of(st.integers(-3, 20), st.sampled_from(["True", "False", "1.5", "-0", "0x3", "1_0", "007", "10**3"]))
strings = st.one_of(st.text(alphabet="ab c\u3042,\"'\\=)(\n", max_size=6).map(repr), st.sampled_from(['""', "b'a'", "f'{x}'"]))
argument = st.one_of(integers.map(str), strings, st.sampled_from([
    "x", "len(x)", "[1]", "{}", "lambda: 0", "__import__('os')", "open('/tmp/prox-pwned', 'w')", "__import__('pathlib').Path('/tmp/prox-pwned').touch()", "*x", "**y",
    "(1, 2)", "None", "...",
]))
keyword = st.sampled_from(["", "line_start=", "line_end=", "start=", "end=", "start_line=", "end_line=", "all=",
                           "source_str=", "target_str=", "bogus="])
function = st.sampled_from(["remove_lines", "normalize", "keep_chunk", "keep_doc", "drop_doc", "skip_chunk",
                            "os.system", "exec", "eval", "__import__", "print", "open", "x.y.z"])


@st.composite
def statements(draw):
    args = draw(st.lists(st.tuples(keyword, argument).map("".join), max_size=3))
    text = f"{draw(function)}({', '.join(args)})"
    decoration = draw(st.sampled_from(["", ";", "  ", "# ", "```", "x = ", ")", "(", "\n", " # note"]))
    position = draw(st.sampled_from(["before", "after", "inside"]))
    if position == "before":
        return decoration + text
    if position == "after":
        return text + decoration
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + decoration + text[cut:]


programs = st.one_of(st.lists(statements(), max_size=8).map("\n".join), st.text(max_size=80))


@contextlib.contextmanager
def nothing_is_evaluated():
    """eval/exec are forbidden; compile may only build an AST (what ast.parse does)."""
    real_compile = builtins.compile

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called on program text")

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "compile() called for code, not for an AST"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    with mock.patch.object(builtins, "eval", forbidden), mock.patch.object(builtins, "exec", forbidden), \
            mock.patch.object(builtins, "compile", ast_only_compile):
        yield


def is_subsequence(needle, haystack):
    remaining = iter(haystack)
    return all(any(item == candidate for candidate in remaining) for item in needle)


def output_lines(execution, text):
    """The output's lines; "" after every line was removed is no line at all (not one empty line)."""
    if execution.report.lines_removed == len(text.split("\n")):
        return []
    return execution.text.split("\n")


def apply_replacements(line, replacements):
    for source, target in replacements:
        line = line.replace(source, target)
    return line


@SETTINGS
@given(text=st.text(max_size=60), doc_program=st.one_of(st.none(), programs), chunk_program=st.one_of(st.none(), programs),
       keep_prob=st.one_of(st.none(), st.floats(0, 1)))
def test_random_programs_never_raise(text, doc_program, chunk_program, keep_prob):
    execution = execute_document(text, doc_program, chunk_program, keep_prob)
    report = execution.report
    assert execution.dropped == (execution.text is None) == (report.outcome == "dropped")
    assert report.chunk_errors >= len([e for e in report.errors]) - report.doc_errors
    if chunk_program is None:
        assert report.chunk_errors == 0


@SETTINGS
@given(text=documents, program=programs)
def test_adversarial_programs_execute_nothing(text, program):
    with nothing_is_evaluated():
        execute_document(text, program, program, options=NEVER_DROP)
        parse_program(program, "doc")
    assert not PWNED.exists()


@SETTINGS
@given(text=documents, program=programs)
def test_only_whole_lines_are_deleted_and_listed_replacements_applied(text, program):
    execution = execute_document(text, None, program, options=NEVER_DROP)
    replacements = [call.args for call in parse_program(program).calls if call.name == "normalize"]
    lines = text.split("\n")
    out_lines = output_lines(execution, text)
    assert len(out_lines) == len(lines) - execution.report.lines_removed
    # Some in-order subset of the program's replacements, applied to a subsequence of the original lines.
    # Sources and targets hold no newline, so replacing in the joined text equals replacing line by line.
    assert any(
        is_subsequence(out_lines, [apply_replacements(line, subset) for line in lines])
        for size in range(len(replacements) + 1)
        for subset in itertools.combinations(replacements, size)
    )


@SETTINGS
@given(text=documents, program=st.lists(statements(), max_size=6).map("\n".join))
def test_edits_without_normalize_keep_original_lines(text, program):
    program = "\n".join(line for line in program.split("\n") if "normalize" not in line)
    execution = execute_document(text, None, program, options=NEVER_DROP)
    assert is_subsequence(output_lines(execution, text), text.split("\n"))


@SETTINGS
@given(st.text())
def test_count_words_matches_the_reference_regex(text):
    assert count_words(text) == len(REFERENCE_WORD.findall(text))


@SETTINGS
@given(lines=st.lists(line_text, min_size=1, max_size=10), data=st.data())
def test_line_removal_equals_joining_the_other_lines(lines, data):
    ranges = data.draw(st.lists(st.tuples(st.integers(0, len(lines) - 1), st.integers(0, len(lines) - 1))
                                .map(sorted).map(tuple), min_size=1, max_size=4))
    removed = {line for first, last in ranges for line in range(first, last + 1)}
    expected = "\n".join(line for number, line in enumerate(lines) if number not in removed)
    assert TextIndex("\n".join(lines)).without_lines(merge_ranges(ranges)) == expected


near_canonical = st.builds(
    lambda name, space, args, close: f"{name}({space}{args}{close}",
    st.sampled_from(["remove_lines", "normalize", "keep_chunk", "keep_doc", "drop_doc"]),
    st.sampled_from(["", " ", "\t", "\x0c"]),
    st.one_of(
        st.tuples(st.integers(0, 10**20), st.integers(0, 50)).map(lambda t: f"{t[0]}, {t[1]}"),
        st.tuples(st.text(max_size=5), st.text(max_size=5)).map(lambda t: f'"{t[0]}", \'{t[1]}\''),
        st.text(alphabet="0123456789, '\"\\\u2028\r\x00", max_size=8),
    ),
    st.sampled_from([")", ",)", " )", ", )"]),
)


@SETTINGS
@given(near_canonical)
def test_fast_path_agrees_with_the_ast_path(statement):
    def outcome(parse):
        try:
            return parse().args
        except StatementError as exc:
            return exc.args[0].split(":")[0]

    fast = outcome(lambda: parse_statement(statement.strip()))
    slow = outcome(lambda: _parse_call(statement.strip(), FUNCTIONS["chunk"], False))
    assert fast == slow
