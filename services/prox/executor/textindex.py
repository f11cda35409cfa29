"""Vectorised views of one document: code points, line boundaries and word starts (numpy).

Splitting a 15 kB web page into lines and words with `str.split` allocates thousands of strings; one
pass over its code points with lookup tables is several times faster and lets removals be done with a
handful of slices. Word rule (ProX): each character in the CJK/kana/hangul ranges is one word; other
words are maximal runs of characters that are neither whitespace (`str.isspace`, the same set as the
regex `\\s`) nor in those ranges.
"""
from __future__ import annotations

import re
from functools import cached_property

import numpy as np

CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF))
MAX_SPACE_CODE_POINT = 0x3000  # U+3000 IDEOGRAPHIC SPACE is the highest code point str.isspace() accepts

SPACE, CJK, OTHER = 0, 1, 2


def _character_classes() -> np.ndarray:
    table = np.full(0x110000, OTHER, dtype=np.uint8)
    table[[code for code in range(MAX_SPACE_CODE_POINT + 1) if chr(code).isspace()]] = SPACE
    for first, last in CJK_RANGES:
        table[first:last + 1] = CJK
    return table


CHARACTER_CLASSES = _character_classes()
BMP_CLASSES = CHARACTER_CLASSES[:0x10000].copy()  # 64 kB: stays in cache, unlike the 1.1 MB full table


def code_units(text: str) -> np.ndarray:
    """UTF-16 code units (a surrogate pair is two OTHER units: word counts are unchanged, since every
    whitespace and CJK character is in the BMP), or code points when offsets must match `str` indices
    and the text has characters outside the BMP."""
    return np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)


def code_points(text: str) -> np.ndarray:
    """Code units whose indices are `str` indices: UTF-16 when the text is all BMP, else UTF-32."""
    units = code_units(text)
    if len(units) == len(text):
        return units
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def count_word_starts(codes: np.ndarray) -> int:
    """How many words begin in the code units (ProX's rule; see the module docstring)."""
    if len(codes) == 0:
        return 0
    classes = (BMP_CLASSES if codes.dtype == np.uint16 else CHARACTER_CLASSES).take(codes)
    is_other = classes == OTHER
    run_starts = np.count_nonzero(is_other[1:] > is_other[:-1]) + int(is_other[0])
    return run_starts + int(np.count_nonzero(classes == CJK))


def word_starts(codes: np.ndarray) -> np.ndarray:
    """True at each code unit where a word begins: every CJK character, and the first of each run of others
    (the positions `count_word_starts` counts)."""
    classes = (BMP_CLASSES if codes.dtype == np.uint16 else CHARACTER_CLASSES).take(codes)
    is_other = classes == OTHER
    starts = classes == CJK
    if len(codes):
        starts[0] |= is_other[0]
        starts[1:] |= is_other[1:] > is_other[:-1]
    return starts


_WORD_PART = re.compile("[^\\s" + "".join(f"{chr(first)}-{chr(last)}" for first, last in CJK_RANGES) + "]+")


def is_word_part(text: str) -> bool:
    """True when `text` is not empty and has no whitespace or CJK character: replacing every occurrence of
    one such string by another leaves every word boundary, so the word count, as it is."""
    return _WORD_PART.fullmatch(text) is not None


def count_words(text: str) -> int:
    """How many words `text` has under ProX's rule."""
    if text.isascii():  # no CJK possible; str.split() splits on exactly the whitespace set
        return len(text.split())
    return count_word_starts(code_units(text))


class TextIndex:
    """Line boundaries of one text, for removing whole lines by their numbers."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.codes = code_points(text)

    @cached_property
    def bounds(self) -> np.ndarray:
        """bounds[i] is the offset of the newline before line i (-1 for line 0); bounds[i + 1] is where line i
        ends. Computed on first use: a program without removals never needs it."""
        return np.concatenate(([-1], np.flatnonzero(self.codes == 10), [len(self.text)]))

    @property
    def line_count(self) -> int:
        return len(self.bounds) - 1

    @cached_property
    def word_starts(self) -> np.ndarray:
        """`word_starts` of the text's code units, computed once for the input and the output word counts."""
        return word_starts(self.codes)

    def word_count(self) -> int:
        return int(np.count_nonzero(self.word_starts))

    def words_in_lines(self, merged_ranges: list[tuple[int, int]]) -> int:
        """How many words the inclusive line ranges hold. A line break is whitespace, so no word spans two
        lines and the text without these lines has exactly `word_count() - words_in_lines(...)` words."""
        starts = self.word_starts
        return sum(int(np.count_nonzero(starts[self.bounds[first] + 1:self.bounds[last + 1]]))
                   for first, last in merged_ranges)

    def without_lines(self, merged_ranges: list[tuple[int, int]]) -> str:
        """The text without the given sorted, disjoint, non-adjacent inclusive line ranges: `"\n".join`
        of the other lines."""
        # Kept pieces lie between removed spans, each span taking one neighbouring newline with it.
        # A Python loop: a page has a few ranges, too few for numpy's per-call cost to pay off.
        bounds, text = self.bounds, self.text
        pieces, begin = [], 0
        for first, last in merged_ranges:
            end = int(bounds[first])  # the newline before line `first` (-1 before line 0: nothing kept)
            if begin <= end:
                pieces.append(text[begin:end])
            begin = int(bounds[last + 1]) + 1
        if begin <= len(text):
            pieces.append(text[begin:])
        return "\n".join(pieces)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint inclusive ranges covering the same lines (adjacent ranges merged)."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged
