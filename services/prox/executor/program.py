"""Reading a ProX program: model output (text) → validated calls and errors. Nothing is ever evaluated.

Each statement is parsed with `ast.parse(mode="eval")`; arguments go through `ast.literal_eval`.
A regular-expression fast path recognises the forms models emit, positional or keyword
(`remove_lines(3, 7)`, `remove_lines(start=3, end=7)`, `normalize(source_str="a", target_str="b")`,
`untouch_doc()`, ...) without building an AST; for those it gives exactly what the AST path gives and
leaves everything else to the AST path (property tests check this), so it changes speed only.

Judgment calls where the specification is silent (ProX's reference code is the guide):
- `remove_lines` needs both bounds (or `all=True` alone); `all=False` is a bad argument.
- A positional and a keyword argument naming the same parameter (or two aliases of it, such as
  `start=` and `line_start=`) is a `duplicate_argument` error.
- A syntax error on the last statement of a program that ends inside an open bracket or string is
  reported as `truncated:` (the token limit), otherwise as `syntax:`.
- Statement texts kept in errors are cut to `MAX_STATEMENT_CHARS` so a runaway line cannot bloat reports.
- A `normalize` string that UTF-8 cannot encode (a lone surrogate such as `"\\udc00"`) is a
  `bad_argument`, so no program can put unwritable text into a document.
"""
from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Literal, NamedTuple

from prox_proto.report import ProgramError

Level = Literal["doc", "chunk"]

MAX_STATEMENT_CHARS = 300

DOC_DECISIONS = frozenset({"drop_doc", "keep_doc"})
CHUNK_NO_OPS = frozenset({"keep_chunk", "untouch_doc", "skip_chunk", "keep_doc", "keep_all"})
CHUNK_EDITS = frozenset({"remove_lines", "normalize"})

START_ALIASES = ("line_start", "start", "start_line")
END_ALIASES = ("line_end", "end", "end_line")


class Call(NamedTuple):
    """One valid statement: the function name and its bound arguments (already type-checked). Immutable;
    a named tuple because a program makes one per statement and tuples are the cheapest to build."""

    statement: str
    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveAll:
    """The argument value of `remove_lines(all=True)`."""


REMOVE_ALL = RemoveAll()


@dataclass(slots=True)
class ParsedProgram:
    calls: list[Call]
    errors: list[ProgramError]


class StatementError(Exception):
    """A statement that cannot be executed; `args[0]` is the reason, `kind: detail`."""


def error_kind(reason: str) -> str:
    """The short stable kind that prefixes every error reason (`"syntax"`, `"clamped"`, ...)."""
    return reason.split(":", 1)[0].strip()


def encodable(text: str) -> bool:
    """True when `text` can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def program_error(statement: str, reason: str, level: Level = "chunk") -> ProgramError:
    """The error for one statement; its text is cut to `MAX_STATEMENT_CHARS` and any character that
    UTF-8 cannot encode (a lone surrogate) is written as an escape, so a report can always be sent."""
    if len(statement) > MAX_STATEMENT_CHARS:
        statement = statement[:MAX_STATEMENT_CHARS] + "…"
    if not encodable(statement):
        statement = statement.encode("utf-8", "backslashreplace").decode("utf-8")
    return ProgramError(statement=statement, reason=reason, level=level)


_NOT_STATEMENTS = ("#", "```")  # comment and code-fence lines


def statements(program: str) -> list[str]:
    """The statement lines of a program: stripped, without blanks, comments, fences or repeats."""
    unique_lines = dict.fromkeys(map(str.strip, program.split("\n")))
    return [line for line in unique_lines if line and not line.startswith(_NOT_STATEMENTS)]


# ---------------------------------------------------------------------------------------------
# Argument binding, per function. Each binder takes literal positional values and keyword values
# and returns the bound argument tuple, or raises StatementError.

def _bind_aliases(name: str, keywords: dict[str, Any], aliases: tuple[str, ...], positional: list[Any]) -> Any:
    given = [alias for alias in aliases if alias in keywords]
    if len(given) + len(positional) > 1:
        raise StatementError(f"duplicate_argument: {aliases[0]} given more than once in {name}()")
    if positional:
        return positional[0]
    if given:
        return keywords[given[0]]
    raise StatementError(f"bad_argument: {name}() is missing {aliases[0]}")


def _line_number(name: str, value: Any) -> int:
    if type(value) is not int:  # bool is an int subclass: True/False are errors
        raise StatementError(f"bad_argument: {name} must be a non-negative integer, got {type(value).__name__}")
    if value < 0:
        raise StatementError(f"out_of_range: {name}={value} is negative")
    return value


def _bind_remove_lines(positional: list[Any], keywords: dict[str, Any]) -> tuple[Any, ...]:
    if "all" in keywords:
        if positional or len(keywords) > 1 or keywords["all"] is not True:
            raise StatementError("bad_argument: remove_lines(all=True) takes no other argument")
        return (REMOVE_ALL,)
    _reject_unknown("remove_lines", keywords, START_ALIASES + END_ALIASES)
    if len(positional) > 2:
        raise StatementError(f"bad_argument: remove_lines() takes 2 arguments, got {len(positional)}")
    start = _bind_aliases("remove_lines", keywords, START_ALIASES, positional[:1])
    end = _bind_aliases("remove_lines", keywords, END_ALIASES, positional[1:2])
    return (_line_number("line_start", start), _line_number("line_end", end))


def _normalize_string(name: str, value: Any) -> str:
    if type(value) is not str:
        raise StatementError(f"bad_argument: {name} must be a string, got {type(value).__name__}")
    if "\n" in value:
        raise StatementError(f"bad_argument: {name} contains a newline")
    if not encodable(value):
        raise StatementError(f"bad_argument: {name} is not valid Unicode (a lone surrogate cannot be written)")
    return value


def _bind_normalize(positional: list[Any], keywords: dict[str, Any]) -> tuple[Any, ...]:
    _reject_unknown("normalize", keywords, ("source_str", "target_str"))
    if len(positional) > 2:
        raise StatementError(f"bad_argument: normalize() takes 2 arguments, got {len(positional)}")
    source = _bind_aliases("normalize", keywords, ("source_str",), positional[:1])
    if "target_str" in keywords or len(positional) > 1:
        target = _bind_aliases("normalize", keywords, ("target_str",), positional[1:2])
    else:
        target = ""
    source = _normalize_string("source_str", source)
    if not source.strip():
        raise StatementError("bad_argument: normalize source_str is empty or blank")
    return (source, _normalize_string("target_str", target))


def _bind_nothing(positional: list[Any], keywords: dict[str, Any]) -> tuple[Any, ...]:
    if positional or keywords:
        raise StatementError("bad_argument: takes no arguments")
    return ()


def _reject_unknown(name: str, keywords: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in keywords:
        if key not in allowed:
            raise StatementError(f"unknown_argument: {name}() has no argument {key!r}")


Binder = Callable[[list[Any], dict[str, Any]], tuple[Any, ...]]

FUNCTIONS: dict[Level, dict[str, Binder]] = {
    "doc": {name: _bind_nothing for name in DOC_DECISIONS},
    "chunk": {
        "remove_lines": _bind_remove_lines,
        "normalize": _bind_normalize,
        **{name: _bind_nothing for name in CHUNK_NO_OPS},
    },
}


# ---------------------------------------------------------------------------------------------
# The fast path: the forms models emit, each read by one regular expression, without an AST.
#
# It accepts a subset of what the AST path accepts and gives exactly the `Call` (or the binder's error)
# the AST path gives, property-tested against it; for anything else it returns None and the AST path
# decides, so syntax, duplicate and unknown-name errors have one source. Recognised, keyword or not:
#   remove_lines(0, 74)  remove_lines(start=0, end=74)  remove_lines( start=7, end=7)
#   remove_lines(line_start=3, line_end=9)  normalize("a", "b")  normalize(source_str="a", target_str="b")
#   untouch_doc()  keep_chunk()  keep_doc()  drop_doc()  (the no-argument functions of the level)

_GAP = r"[ \t]*"  # the only token separators here: form feeds and line continuations take the AST path
# Python rejects leading zeros in non-zero decimals, so `0|[1-9]...`; the digit cap keeps far below the
# int-string limit.
_INT = r"(0|[1-9][0-9]{0,17})"


def _keyword(names: tuple[str, ...]) -> str:
    return rf"(?:{'|'.join(names)}){_GAP}={_GAP}"


def _arguments(first: str, first_keyword: str, second: str, second_keyword: str, second_optional: bool) -> str:
    """`first, second` in parameter order, each with its keyword or without; a positional argument after
    a keyword one (a syntax error) does not match, as `(?(1)...)` demands the second keyword when the
    first was given. Arguments in another order, or other names, take the AST path."""
    second_part = rf"{_GAP},{_GAP}(?(1){second_keyword}|(?:{second_keyword})?){second}"
    return rf"(?:({first_keyword}))?{first}" + (f"(?:{second_part})?" if second_optional else second_part)


def _call_pattern(name: str, arguments: str) -> re.Pattern[str]:
    return re.compile(rf"{name}{_GAP}\({_GAP}{arguments}{_GAP},?{_GAP}\)")


_FAST_REMOVE = _call_pattern("remove_lines", _arguments(
    _INT, _keyword(START_ALIASES), _INT, _keyword(END_ALIASES), second_optional=False))
# Plain quoted strings: no prefix, escape, control character or surrogate (those take the AST path).
_PLAIN = r"[^\x00-\x08\x0a-\x1f\\\ud800-\udfff{quote}]*"
_STRING = "(?:\"(" + _PLAIN.format(quote='"') + ")\"|'(" + _PLAIN.format(quote="'") + ")')"
_FAST_NORMALIZE = _call_pattern("normalize", _arguments(
    _STRING, _keyword(("source_str",)), _STRING, _keyword(("target_str",)), second_optional=True))
_FAST_NO_ARGS = re.compile(rf"([a-z_]+){_GAP}\({_GAP}\)")


def _removal_call(statement: str, match: re.Match[str]) -> Call:
    # What the binder returns; `_make` builds the tuple without the generated `__new__`'s Python call.
    return Call._make((statement, "remove_lines", (int(match[2]), int(match[3]))))


def _fast_remove_lines(statement: str) -> Call | None:
    match = _FAST_REMOVE.fullmatch(statement)
    return None if match is None else _removal_call(statement, match)


def _fast_normalize(statement: str) -> Call | None:
    match = _FAST_NORMALIZE.fullmatch(statement)
    if match is None:
        return None
    _, source_double, source_single, target_double, target_single = match.groups()
    strings = [source_single if source_double is None else source_double]
    if target_double is not None or target_single is not None:
        strings.append(target_single if target_double is None else target_double)
    return Call(statement, "normalize", _bind_normalize(strings, {}))


def _fast_no_arguments(statement: str, functions: dict[str, Binder]) -> Call | None:
    match = _FAST_NO_ARGS.fullmatch(statement)
    if match and functions.get(match[1]) is _bind_nothing:
        return Call(statement, match[1], ())
    return None


# The exact statements `name()` of each level, ready-made (calls are immutable).
_NO_ARGUMENT_CALLS: dict[Level, dict[str, Call]] = {
    level: {f"{name}()": Call(f"{name}()", name) for name, binder in functions.items() if binder is _bind_nothing}
    for level, functions in FUNCTIONS.items()
}


def _fast_call(statement: str, functions: dict[str, Binder]) -> Call | None:
    if statement.startswith("remove_lines"):
        return _fast_remove_lines(statement) if "remove_lines" in functions else None
    if statement.startswith("normalize"):
        return _fast_normalize(statement) if "normalize" in functions else None
    return _fast_no_arguments(statement, functions)


# ---------------------------------------------------------------------------------------------
# The AST path: every statement the fast path does not take, and the reason for every error

def _syntax_reason(exc: Exception, is_last: bool) -> str:
    message = str(getattr(exc, "msg", exc))
    if is_last and ("never closed" in message or "unterminated" in message or "EOF" in message):
        return f"truncated: {message}"
    return f"syntax: {message}"


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise StatementError(f"bad_argument: not a literal ({type(node).__name__})") from exc


def _parse_call(statement: str, functions: dict[str, Binder], is_last: bool) -> Call:
    try:
        with warnings.catch_warnings():  # invalid escapes in model text are not our warnings to print
            warnings.simplefilter("ignore")
            tree = ast.parse(statement, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise StatementError(_syntax_reason(exc, is_last)) from exc
    node = tree.body
    if not isinstance(node, ast.Call):
        raise StatementError(f"not_a_call: {type(node).__name__} expression")
    if not isinstance(node.func, ast.Name):
        raise StatementError(f"not_a_call: callee is a {type(node.func).__name__}, not a bare name")
    name = node.func.id
    binder = functions.get(name)
    if binder is None:
        raise StatementError(f"unknown_function: {name[:60]}")
    if any(isinstance(arg, ast.Starred) for arg in node.args) or any(kw.arg is None for kw in node.keywords):
        raise StatementError("bad_argument: * and ** arguments are not allowed")
    positional = [_literal(arg) for arg in node.args]
    keywords: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg in keywords:
            raise StatementError(f"duplicate_argument: {keyword.arg} given more than once in {name}()")
        keywords[keyword.arg] = _literal(keyword.value)
    return Call(statement, name, binder(positional, keywords))


def parse_statement(statement: str, level: Level = "chunk", is_last: bool = False) -> Call:
    """Parse one stripped statement into a `Call`, or raise `StatementError` with the reason."""
    functions = FUNCTIONS[level]
    return (_NO_ARGUMENT_CALLS[level].get(statement) or _fast_call(statement, functions)
            or _parse_call(statement, functions, is_last))


def parse_program(program: str, level: Level = "chunk") -> ParsedProgram:
    """Every statement of `program` as a valid `Call` or a `ProgramError`, in program order.

    Range checks that need the document (line numbers, normalize sources) happen at execution.
    """
    lines = statements(program)
    removals = _removal_matches(lines, level)
    if all(removals):  # the usual chunk program: nothing but fast `remove_lines`
        return ParsedProgram(list(map(_removal_call, lines, removals)), [])
    calls: list[Call] = []
    errors: list[ProgramError] = []
    last = len(lines) - 1
    for index, (line, removal) in enumerate(zip(lines, removals)):
        try:
            calls.append(_removal_call(line, removal) if removal else parse_statement(line, level, index == last))
        except StatementError as exc:
            errors.append(program_error(line, exc.args[0], level))
    return ParsedProgram(calls, errors)


def _removal_matches(lines: list[str], level: Level) -> list[re.Match[str] | None]:
    """`_FAST_REMOVE` against every line in one go (None where it does not match): most statements are
    `remove_lines`, and this spares them the per-statement dispatch of `parse_statement`."""
    if "remove_lines" not in FUNCTIONS[level]:
        return [None] * len(lines)
    return list(map(_FAST_REMOVE.fullmatch, lines))


# --- writing programs (the heuristic writer, the baselines, the benchmarks) ---------------------------
def removal_runs(removed) -> list[tuple[int, int]]:
    """The maximal runs [first, last] (inclusive, 0-based line numbers) of true values in `removed`."""
    runs, start = [], None
    for index, flag in enumerate(list(removed) + [False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def chunk_program(removed_runs: list[tuple[int, int]], normalizations: list[tuple[str, str]] = ()) -> str:
    """A chunk program in the positional forms this parser reads fastest; `keep_chunk()` when it edits nothing."""
    calls = [f"remove_lines({first}, {last})" for first, last in removed_runs]
    calls += [f"normalize({source!r}, {target!r})" for source, target in normalizations]
    return "\n".join(calls) if calls else "keep_chunk()"
