"""Vectorised views of one document: code points, line boundaries and word starts (numpy).

Splitting a 15 kB web page into lines and words with `str.split` allocates thousands of strings; one
pass over its code points with lookup tables is several times faster and lets removals be done with a
handful of slices. Word rule (ProX): each character in the CJK/kana/hangul ranges is one word; other
words are maximal runs of characters that are neither whitespace (`str.isspace`, the same set as the
regex `\\s`) nor in those ranges.
"""
from __future__ import annotations

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
        # bounds[i] is the offset of the newline before line i (-1 for line 0); bounds[i + 1] is where line i ends.
        self.bounds = np.concatenate(([-1], np.flatnonzero(self.codes == 10), [len(text)]))

    @property
    def line_count(self) -> int:
        return len(self.bounds) - 1

    def word_count(self) -> int:
        return count_word_starts(self.codes)

    def without_lines(self, merged_ranges: list[tuple[int, int]]) -> str:
        """The text without the given sorted, disjoint, non-adjacent inclusive line ranges: `"\n".join`
        of the other lines."""
        firsts, lasts = np.array(merged_ranges, dtype=np.int64).T
        starts, ends = self.bounds[firsts] + 1, self.bounds[lasts + 1]
        # Kept pieces lie between removed spans, each span taking one neighbouring newline with it.
        cut_from = [0, *(ends + 1).tolist()]
        cut_to = [*(starts - 1).tolist(), len(self.text)]
        return "\n".join(self.text[begin:end] for begin, end in zip(cut_from, cut_to) if begin <= end)


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
