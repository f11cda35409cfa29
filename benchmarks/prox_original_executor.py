"""The original ProX chunk executor, re-implemented faithfully as the benchmark's baseline.

ProX (github.com/GAIR-NLP/ProX, `utils/chunk_utils.py`: `execute_meta_operations`, `execute_operations`,
`split_doc`, `merge_intervals`; called by `data_gen/tasks/apply_chunk_refining.py` with thresholds 0.0 and
0.95 and `error_op=2`) reads each program line with `str.startswith`/`index`/`split` -- no parser, no AST --
and works on Python lists and sets of lines. This module does the same operations in the same order so
that its time is the original's time; it exists only to be measured against, never to run programs:

- a `remove_lines` line's arguments are the text between the first `(` and the first `)`, split on `,`;
  each value is what follows the first `=` (so only keyword forms such as `start=0, end=74` parse:
  positional `remove_lines(0, 74)` is an error operation); every line number of the range goes into a set;
- a `normalize` line's values are split the same way, stripped of `"`, and replaced in the whole text
  at once (before the line removal);
- the kept text is `"\\n".join` of the lines not in the set; then word counts with `str.split()` decide:
  "" (dropped) at a keep ratio <= 5% or <= 10 words, the original text at >= 2 error operations.
"""
from __future__ import annotations


def split_doc(text: str) -> list[str]:
    """The text's lines, copied one by one (as the original does)."""
    processed_lines = []
    for line in text.split("\n"):
        processed_lines.append(line[:])
    return processed_lines


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if not intervals:
        return []
    intervals.sort(key=lambda interval: interval[0])
    merged = [intervals[0]]
    for current in intervals[1:]:
        previous = merged[-1]
        if current[0] <= previous[1] + 1:
            merged[-1] = (previous[0], max(previous[1], current[1]))
        else:
            merged.append(current)
    return merged


def execute_operations(text: str, operations: list[str]) -> tuple[str, list, list[str], list, int]:
    """(kept text, normalization pairs, removed lines, removal ranges, error operations).

    The argument extraction is written out in both branches, as in the original: a shared helper would
    add a call per operation and make the baseline slower than the original is.
    """
    lines = split_doc(text)
    lines_to_remove: set[int] = set()
    normalization_pairs: list[tuple[str, str]] = []
    intervals: list[tuple[int, int]] = []
    num_error_op = 0
    for operation in operations:
        if operation.startswith("remove_lines") and "all=True" not in operation:
            try:
                start_idx = operation.index("(") + 1
            except ValueError:
                num_error_op += 1
                continue
            try:
                end_idx = operation.index(")")
            except ValueError:
                num_error_op += 1
                end_idx = -1
            params = operation[start_idx:end_idx].split(",")
            try:
                start = int(params[0].split("=")[1])
                end = int(params[1].split("=")[1])
            except Exception:  # the original catches everything here
                num_error_op += 1
                continue
            intervals.append((start, end))
            for line_number in range(start, end + 1):
                lines_to_remove.add(line_number)
        elif operation.startswith("normalize"):
            try:
                start_idx = operation.index("(") + 1
            except ValueError:
                num_error_op += 1
                continue
            try:
                end_idx = operation.index(")")
            except ValueError:
                num_error_op += 1
                end_idx = -1
            params = operation[start_idx:end_idx].split(",")
            if len(params) == 1:
                try:
                    source_str = params[0].split("=")[1].strip('"')
                    text = text.replace(source_str, "")
                    normalization_pairs.append((source_str, ""))
                except Exception:
                    num_error_op += 1
                    continue
            elif len(params) == 2:
                try:
                    source_str = params[0].split("=")[1].strip('"')
                    target_str = params[1].split("=")[1].strip('"')
                except Exception:
                    num_error_op += 1
                    continue
                if source_str != " " and source_str != "":
                    text = text.replace(source_str, target_str)
                normalization_pairs.append((source_str, target_str))
        elif operation.startswith("remove_lines") and "all=True" in operation:
            lines_to_remove = set(range(len(lines)))
    lines = split_doc(text)
    processed_lines = [line for i, line in enumerate(lines) if i not in lines_to_remove]
    noise_lines = [line for i, line in enumerate(lines) if i in lines_to_remove]
    remove_operations = []
    for interval in merge_intervals(intervals):
        if interval[0] >= len(lines):
            num_error_op += 1
            continue
        if interval[1] >= len(lines):
            num_error_op += 1
            interval = (interval[0], len(lines) - 1)
        remove_operations.append([interval[0], interval[1]])
    return "\n".join(processed_lines), normalization_pairs, noise_lines, remove_operations, num_error_op


def execute_meta_operations(text: str, operations: str, threshold_1: float = 0.0, threshold_2: float = 0.95,
                            error_op: int = 2) -> str:
    """The refined text ("" when the document is dropped). Like the original, it divides by the word count
    of `text`: a document without words raises ZeroDivisionError."""
    program = operations.strip(" ").split("\n")
    processed_text, _, _, _, num_error_op = execute_operations(text, program)
    len_processed_text = len(processed_text.split())
    len_text = len(text.split())
    if len_processed_text / len_text * 1.0 <= (1 - threshold_2) and num_error_op < error_op:
        return ""
    if len_processed_text <= 10:
        return ""
    if len_processed_text / len_text * 1.0 >= threshold_1 and num_error_op < error_op:
        return processed_text
    return text
