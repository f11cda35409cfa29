"""The executor's fast paths change speed only: every form the released chunk model emits is read without
an AST, and for any statement, program or document the result is exactly the AST path's (malformed
variants fall back to the AST parser and give its errors)."""
import contextlib
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox.executor import ExecutorOptions, count_words, execute_document, parse_program
from prox.executor import program
from prox.executor.program import FUNCTIONS, StatementError, _parse_call, parse_statement, statements
from prox.executor.textindex import TextIndex, merge_ranges

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEVER_DROP = ExecutorOptions(min_words=0, min_keep_ratio=-1.0, max_errors=10**6)

RELEASED_FORMS = [
    ("remove_lines(start=0, end=74)", "remove_lines", (0, 74)),
    ("remove_lines( start=7, end=7)", "remove_lines", (7, 7)),
    ("remove_lines(line_start=3, line_end=9)", "remove_lines", (3, 9)),
    ("remove_lines(start_line=3, end_line=9)", "remove_lines", (3, 9)),
    ("remove_lines(3, end=9)", "remove_lines", (3, 9)),
    ("remove_lines(0, 74)", "remove_lines", (0, 74)),
    ("remove_lines (0,74,)", "remove_lines", (0, 74)),
    ('normalize(source_str="Read more", target_str="")', "normalize", ("Read more", "")),
    ("normalize(source_str='\u2019', target_str=\"'\")", "normalize", ("\u2019", "'")),
    ('normalize( source_str = "a" , target_str = "b" , )', "normalize", ("a", "b")),
    ('normalize(source_str="x")', "normalize", ("x", "")),
    ('normalize("a", "b")', "normalize", ("a", "b")),
    ('normalize("a", target_str="b")', "normalize", ("a", "b")),
    ("untouch_doc()", "untouch_doc", ()),
    ("keep_chunk()", "keep_chunk", ()),
    ("keep_doc( )", "keep_doc", ()),
]


@contextlib.contextmanager
def no_ast():
    with mock.patch.object(program.ast, "parse", side_effect=AssertionError("took the AST path")):
        yield


@contextlib.contextmanager
def ast_only():
    """The executor with every fast path switched off: the reference the fast paths must equal."""
    with mock.patch.object(program, "_fast_call", return_value=None), \
            mock.patch.object(program, "_removal_matches", side_effect=lambda lines, level: [None] * len(lines)), \
            mock.patch.dict(program._NO_ARGUMENT_CALLS, {"doc": {}, "chunk": {}}):
        yield


def outcome(parse):
    try:
        return parse()
    except StatementError as exc:
        return exc.args[0]


@pytest.mark.parametrize("statement, name, args", RELEASED_FORMS)
def test_released_forms_take_the_fast_path(statement, name, args):
    with no_ast():
        call = parse_statement(statement)
        parsed = parse_program(f"{statement}\n{statement}  \n")
    assert (call.statement, call.name, call.args) == (statement, name, args)
    assert parsed.calls == [call] and parsed.errors == []
    assert call == _parse_call(statement, FUNCTIONS["chunk"], False)


@pytest.mark.parametrize("statement", ["drop_doc()", "keep_doc()", "keep_doc( )"])
def test_doc_decisions_take_the_fast_path(statement):
    with no_ast():
        assert parse_statement(statement, "doc").name == statement.split("(")[0]


def test_a_whole_released_program_takes_the_fast_path():
    chunk_program = "remove_lines(start=0, end=2)\nuntouch_doc()\nnormalize(source_str=\"b\", target_str=\"B\")"
    with no_ast():
        execution = execute_document("a\nb\nc\nd b e", "keep_doc()", chunk_program, options=NEVER_DROP)
    assert execution.text == "d B e" and execution.report.errors == []


@pytest.mark.parametrize("statement", [
    "remove_lines(start=1, 2)",                   # positional after keyword: syntax
    "remove_lines(start=1, start=2)",             # duplicate
    "remove_lines(1, start=2)",                   # duplicate
    "remove_lines(end=9, start=1)",               # valid, but not a fast form
    "remove_lines(start=01, end=2)",              # syntax
    "remove_lines(start=1, end=2",                # truncated
    "remove_lines(first=1, last=2)",              # unknown argument
    "remove_lines(start=True, end=2)",            # bad argument
    "remove_lines(if=1, end=2)",                  # syntax (a Python keyword)
    'normalize(source_str="a", "b")',             # syntax
    'normalize(target_str="b")',                  # missing source
    'normalize(source_str="", target_str="b")',   # blank source (the binder's error, on the fast path too)
    'normalize(source_str="a\\nb", target_str="c")',
    'normalize(source_str=b"a", target_str="c")',
    'normalize(source_str="a", target_str=)',
    "untouch_doc(1)",
    "untouch_doc",
])
def test_malformed_variants_give_the_ast_paths_result(statement):
    slow = outcome(lambda: _parse_call(statement, FUNCTIONS["chunk"], False))
    assert outcome(lambda: parse_statement(statement)) == slow


# ---------------------------------------------------------------------------------------------
# Property tests over random statements in every form, well-formed and not

class Pool:
    """Parts of statements: `usual` ones build the fast forms, `unusual` ones their malformed neighbours."""

    def __init__(self, usual, unusual):
        self.usual, self.unusual = usual, st.one_of(usual, unusual)

    def pick(self, draw, noisy):
        return draw(self.unusual if noisy else self.usual)


GAPS = Pool(st.sampled_from(["", " "]), st.sampled_from(["  ", "\t", "\x0c", " \\\n", "\u00a0"]))
NOISE_KEYWORDS = st.sampled_from(["all=", "if=", "bogus=", "start =", "end= ", "\u017ftart=", "source_str=",
                                  "target_str=", "start=", "end="])
KEYWORDS = {
    "remove_lines": Pool(st.sampled_from(["", "start=", "end=", "line_start=", "line_end=", "start_line=",
                                          "end_line="]), NOISE_KEYWORDS),
    "normalize": Pool(st.sampled_from(["", "source_str=", "target_str="]), NOISE_KEYWORDS),
}
INTEGERS = Pool(st.integers(0, 200).map(str), st.sampled_from(
    ["10" * 12, "9" * 19, "00", "007", "-1", "True", "1_0", "0x3", "1.0", "+3", "\uff11\uff12"]))
plain_text = st.text(alphabet="ab \u2019,=()\u3042\U0001f642\x7f", max_size=6)
odd_text = st.text(alphabet="ab \t\u2019'\"\\\x00\x0c\r\u2028\udc00n{}", max_size=5)
STRINGS = Pool(
    st.tuples(st.sampled_from(['"', "'"]), plain_text).map(lambda parts: parts[0] + parts[1] + parts[0]),
    st.one_of(
        st.tuples(st.sampled_from(["", "b", "f", "r", "u"]), st.sampled_from(['"', "'", '"""']), odd_text).map(
            lambda parts: f"{parts[0]}{parts[1]}{parts[2]}{parts[1]}"),
        odd_text.map(repr),
        st.sampled_from(['"a" "b"', '"\\udc00"', '"\\u2019"', '" "', '""', "x", "None", "7"])))
VALUES = {"remove_lines": INTEGERS, "normalize": STRINGS}
NAMES = Pool(st.sampled_from(["remove_lines", "remove_lines", "normalize", "untouch_doc", "keep_chunk",
                              "keep_doc", "drop_doc"]),
             st.sampled_from(["skip_chunk", "keep_all", "remove_line", "os.remove_lines", "Remove_lines"]))
TRAILING = Pool(st.just(""), st.sampled_from([",", " , ", ",,"]))
CLOSING = Pool(st.just(")"), st.sampled_from(["", "))", ") # note", ");", ")\r", ") x"]))


@st.composite
def fast_path_candidates(draw):
    """Statements close to the fast forms: the released forms, and their malformed neighbours (one part or
    more drawn from the unusual pools)."""
    noisy = lambda: draw(st.integers(0, 9)) == 0  # noqa: E731  (each part unusual one time in ten)
    name = NAMES.pick(draw, noisy())
    gap = lambda: GAPS.pick(draw, noisy())  # noqa: E731
    keywords, values = KEYWORDS.get(name, KEYWORDS["remove_lines"]), VALUES.get(name, INTEGERS)
    count = draw(st.integers(0, 3)) if name in VALUES else (draw(st.integers(1, 2)) if noisy() else 0)
    arguments = [f"{keywords.pick(draw, noisy())}{gap()}{values.pick(draw, noisy())}" for _ in range(count)]
    separator = f"{gap()},{gap()}"
    trailing, closing = TRAILING.pick(draw, noisy()), CLOSING.pick(draw, noisy())
    return f"{name}{gap()}({gap()}{separator.join(arguments)}{trailing}{gap()}{closing}".strip()


@SETTINGS
@given(statement=fast_path_candidates(), level=st.sampled_from(["chunk", "doc"]))
def test_fast_path_statements_equal_the_ast_path(statement, level):
    fast = outcome(lambda: parse_statement(statement, level))
    slow = outcome(lambda: _parse_call(statement, FUNCTIONS[level], False))
    assert fast == slow


lines = st.one_of(fast_path_candidates(), st.sampled_from(["", "  ", "# remove the menu", "```python", "```",
                                                           "untouch_doc()", "remove_lines(start=0, end=1)"]))
programs = st.lists(lines, max_size=10).flatmap(
    lambda items: st.sampled_from(["\n", "\r\n", "\n\n"]).map(lambda newline: newline.join(items)))


@SETTINGS
@given(chunk_program=programs, level=st.sampled_from(["chunk", "doc"]))
def test_fast_path_programs_equal_the_ast_path(chunk_program, level):
    fast = parse_program(chunk_program, level)
    with ast_only():
        slow = parse_program(chunk_program, level)
    assert fast == slow


def test_the_reference_really_uses_the_ast_path_only():
    with ast_only(), mock.patch.object(program.ast, "parse", wraps=program.ast.parse) as ast_parse:
        parse_program("remove_lines(start=0, end=1)\nuntouch_doc()\nnormalize(source_str='a')")
    assert ast_parse.call_count == 3


documents = st.lists(st.text(alphabet="ab c\u3042\u00a0\U0001f642,\u2019", max_size=12), min_size=1,
                     max_size=12).map("\n".join)


@SETTINGS
@given(text=documents, chunk_program=programs, doc_program=st.sampled_from([None, "keep_doc()", "drop_doc()", "x"]))
def test_fast_path_executions_equal_the_ast_path(text, chunk_program, doc_program):
    fast = execute_document(text, doc_program, chunk_program, options=NEVER_DROP)
    with ast_only():
        slow = execute_document(text, doc_program, chunk_program, options=NEVER_DROP)
    assert fast == slow


# ---------------------------------------------------------------------------------------------
# The word count after line removals is derived from the index, not recounted

@SETTINGS
@given(text=st.text())
def test_word_starts_mark_the_words_count_words_counts(text):
    assert TextIndex(text).word_count() == count_words(text)


@SETTINGS
@given(text=documents, data=st.data())
def test_words_in_lines_count_the_removed_lines_words(text, data):
    index = TextIndex(text)
    lines = text.split("\n")
    removed = sorted(data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1)))
    ranges = merge_ranges([(number, number) for number in removed])
    assert index.words_in_lines(ranges) == count_words("\n".join(lines[number] for number in removed))
    assert index.word_count() - index.words_in_lines(ranges) == count_words(index.without_lines(ranges))


@SETTINGS
@given(text=documents, chunk_program=programs)
def test_words_out_is_the_output_word_count(text, chunk_program):
    execution = execute_document(text, None, chunk_program, options=NEVER_DROP)
    assert execution.report.words_out == count_words(execution.text)


def test_statement_helpers_keep_their_contract():
    assert statements(" a \n\na\n# c\n```\nb\r") == ["a", "b"]
