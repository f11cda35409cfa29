"""Executing doc- and chunk-level programs on one document, and the final keep/drop decision.

Judgment calls where the specification is silent:
- Doc level: only the fallback counts as an error (`no_decision:`, exactly one per program); invalid
  statements before the deciding `drop_doc()`/`keep_doc()` do not change the decision and are not counted.
- `calls_applied` counts every valid statement that was executed: the doc decision, chunk no-ops,
  `remove_lines` (clamped ones included) and `normalize` calls that passed their checks (even when the
  source had already been removed with its line). The chunk part is 0 for an ignored program.
- `chars_removed`/`chars_added` count whole replacements: `normalize("teh", "the")` applied twice removes
  6 characters and adds 6, so `len(out) == len(in) - chars_removed + chars_added` always holds.
- `--max-growth` compares against the length of the document's original text.
- The report keeps at most `MAX_REPORTED_ERRORS` errors per level; `doc_errors`/`chunk_errors` are exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from prox_proto.report import ExecutionReport, ProgramError

from .program import REMOVE_ALL, Call, parse_program, program_error, statements
from .settings import ExecutorOptions
from .textindex import TextIndex, count_words, is_word_part, merge_ranges

MAX_REPORTED_ERRORS = 64


DEFAULT_OPTIONS = ExecutorOptions()


@dataclass(frozen=True)
class Execution:
    text: Optional[str]
    dropped: bool
    report: ExecutionReport


@dataclass
class _ChunkResult:
    text: str
    errors: list[ProgramError]
    words: int  # words in `text` (set once the program is done)
    words_stale: bool = False  # a replacement may have changed `words`
    error_count: int = 0
    ignored: bool = False
    calls_applied: int = 0
    lines_removed: int = 0
    chars_removed: int = 0
    chars_added: int = 0


# ---------------------------------------------------------------------------------------------
# Doc level

def decide_doc(doc_program: str) -> tuple[bool, Optional[ProgramError]]:
    """(keep?, the fallback error or None): the first valid drop_doc()/keep_doc() decides."""
    parsed = parse_program(doc_program, level="doc")
    if parsed.calls:
        return parsed.calls[0].name == "keep_doc", None
    keep = "drop" not in doc_program
    first = next(iter(statements(doc_program)), "")
    detail = f" (first problem: {parsed.errors[0].reason})" if parsed.errors else " (empty program)"
    reason = f"no_decision: no valid drop_doc()/keep_doc(); {'kept' if keep else 'dropped'} by the 'drop' substring rule{detail}"
    return keep, program_error(first, reason, "doc")


# ---------------------------------------------------------------------------------------------
# Chunk level

def _removal_ranges(calls: list[Call], line_count: int, errors: list[ProgramError]) -> tuple[list[tuple[int, int]], int]:
    """Validated inclusive ranges of lines to remove, and how many calls were applied."""
    ranges: list[tuple[int, int]] = []
    applied = 0
    last = line_count - 1
    for call in calls:
        if call.args[0] is REMOVE_ALL:
            ranges.append((0, last))
            applied += 1
            continue
        start, end = call.args
        if start > end:
            errors.append(program_error(call.statement, f"out_of_range: line_start {start} > line_end {end}"))
        elif start > last:
            errors.append(program_error(call.statement, f"out_of_range: line_start {start} past the last line {last}"))
        else:
            if end > last:
                errors.append(program_error(call.statement, f"clamped: line_end {end} clamped to the last line {last}"))
                end = last
            ranges.append((start, end))
            applied += 1
    return ranges, applied


def _is_deletion(source: str, target: str) -> bool:
    """True when `target` is `source` with some characters deleted (a subsequence of it)."""
    remaining = iter(source)
    return all(char in remaining for char in target)


def _normalize_error(call: Call, original: str, current_length: int, occurrences: int,
                     options: ExecutorOptions) -> Optional[str]:
    source, target = call.args
    if source not in original:
        return "normalize_source_missing: source_str does not occur in the document"
    if options.deletion_only and not _is_deletion(source, target):
        return "not_deletion: target_str is not source_str with characters deleted"
    if options.max_growth is not None:
        grown = current_length + occurrences * (len(target) - len(source))
        if grown > options.max_growth * len(original):
            return f"growth: text would grow to {grown} characters, over {options.max_growth} x {len(original)}"
    return None


def _apply_normalizations(result: _ChunkResult, calls: list[Call], original: str, options: ExecutorOptions) -> None:
    for call in calls:
        source, target = call.args
        occurrences = result.text.count(source)
        reason = _normalize_error(call, original, len(result.text), occurrences, options)
        if reason:
            result.errors.append(program_error(call.statement, reason))
            continue
        result.calls_applied += 1
        if occurrences:
            result.words_stale = result.words_stale or not (is_word_part(source) and is_word_part(target))
            result.text = result.text.replace(source, target)
            result.chars_removed += occurrences * len(source)
            result.chars_added += occurrences * len(target)


def _remove_lines(index: TextIndex, calls: list[Call], words: int, errors: list[ProgramError]) -> _ChunkResult:
    if not calls:  # the index's line bounds are not needed
        return _ChunkResult(text=index.text, errors=errors, words=words)
    ranges, applied = _removal_ranges(calls, index.line_count, errors)
    merged = merge_ranges(ranges)
    if not merged:
        return _ChunkResult(text=index.text, errors=errors, words=words, calls_applied=applied)
    edited = index.without_lines(merged)
    return _ChunkResult(text=edited, errors=errors, words=words - index.words_in_lines(merged), calls_applied=applied,
                        lines_removed=sum(last - first + 1 for first, last in merged),
                        chars_removed=len(index.text) - len(edited))


def execute_chunk(index: TextIndex, chunk_program: str, words: int,
                  options: ExecutorOptions = DEFAULT_OPTIONS) -> _ChunkResult:
    """Removals on original line numbers, then normalizations in order; ignored at ≥ max_errors errors.

    `words` is the word count of `index.text`; the output's is derived from the index (no second pass over
    the text) unless a replacement may have merged or split words.
    """
    parsed = parse_program(chunk_program, level="chunk")
    removals = [call for call in parsed.calls if call.name == "remove_lines"]
    normalizations = [call for call in parsed.calls if call.name == "normalize"]
    result = _remove_lines(index, removals, words, list(parsed.errors))
    result.calls_applied += len(parsed.calls) - len(removals) - len(normalizations)  # valid no-ops
    _apply_normalizations(result, normalizations, index.text, options)
    result.error_count = len(result.errors)
    if result.error_count >= options.max_errors:
        return _ChunkResult(text=index.text, errors=result.errors, words=words, error_count=result.error_count,
                            ignored=True)
    if result.words_stale:
        result.words = count_words(result.text)
    return result


# ---------------------------------------------------------------------------------------------
# The whole document

def _doc_keeps(doc_program: Optional[str], keep_prob: Optional[float],
               options: ExecutorOptions) -> tuple[bool, Optional[ProgramError], int]:
    """(keep?, fallback error, calls applied) for the doc stage."""
    if options.keep_threshold is not None and keep_prob is not None:
        return keep_prob >= options.keep_threshold, None, 0
    if doc_program is None:
        return True, None, 0
    keep, error = decide_doc(doc_program)
    return keep, error, 0 if error else 1


def _final_drop_reason(chunk: Optional[_ChunkResult], words_in: int, words_out: int,
                       options: ExecutorOptions) -> Optional[str]:
    if chunk is not None and not chunk.ignored and words_in > 0 and words_out / words_in <= options.min_keep_ratio:
        return "keep_ratio"
    if words_out < options.min_words:
        return "min_words"
    return None


def execute_document(text: str, doc_program: Optional[str] = None, chunk_program: Optional[str] = None,
                     keep_prob: Optional[float] = None, options: ExecutorOptions = DEFAULT_OPTIONS) -> Execution:
    """Run the doc program, then the chunk program, then the final keep/drop rules on one document."""
    keep, doc_error, doc_calls = _doc_keeps(doc_program, keep_prob, options)
    doc_errors = [doc_error] if doc_error else []
    index = TextIndex(text) if keep and chunk_program is not None else None
    words_in = index.word_count() if index is not None else count_words(text)
    if not keep:
        report = ExecutionReport(outcome="dropped", drop_reason="doc_program", errors=doc_errors,
                                 calls_applied=doc_calls, doc_errors=len(doc_errors), words_in=words_in)
        return Execution(text=None, dropped=True, report=report)

    chunk = execute_chunk(index, chunk_program, words_in, options) if index is not None else None
    final_text = chunk.text if chunk is not None else text
    words_out = chunk.words if chunk is not None else words_in
    drop_reason = _final_drop_reason(chunk, words_in, words_out, options)
    outcome = "dropped" if drop_reason else ("edited" if final_text != text else "kept")
    report = ExecutionReport(
        outcome=outcome,
        drop_reason=drop_reason,
        program_ignored=bool(chunk and chunk.ignored),
        errors=doc_errors + (chunk.errors[:MAX_REPORTED_ERRORS] if chunk else []),
        calls_applied=doc_calls + (chunk.calls_applied if chunk else 0),
        lines_removed=chunk.lines_removed if chunk else 0,
        chars_removed=chunk.chars_removed if chunk else 0,
        chars_added=chunk.chars_added if chunk else 0,
        doc_errors=len(doc_errors),
        chunk_errors=chunk.error_count if chunk else 0,
        words_in=words_in,
        words_out=0 if drop_reason else words_out,
    )
    return Execution(text=None if drop_reason else final_text, dropped=bool(drop_reason), report=report)
