"""Scoring functions: line alignment, precision/recall/F1, word F1, balanced accuracy, ROC-AUC."""
from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher
from typing import NamedTuple, Sequence

FUZZY_MIN_RATIO = 0.5

# A word is a run of letters/digits, except that CJK characters count one by one (no spaces between words).
_TOKENS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+")


class Counts(NamedTuple):
    tp: int
    fp: int
    fn: int


def _ratio(part: int, whole: int, empty_value: float) -> float:
    return part / whole if whole else empty_value


def precision_recall_f1(counts: Counts) -> tuple[float, float, float]:
    """Nothing to find and nothing found is perfect (1, 1, 1); finding nothing when there was something is 0."""
    tp, fp, fn = counts
    precision = _ratio(tp, tp + fp, 1.0 if fn == 0 else 0.0)
    recall = _ratio(tp, tp + fn, 1.0 if fp == 0 else 0.0)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, 1.0)
    return precision, recall, f1


def kept_input_lines(input_lines: Sequence[str], output_lines: Sequence[str]) -> list[int]:
    """0/1 per input line: 1 when some output line comes from it (exact matches first, in order, then fuzzy)."""
    kept = [0] * len(input_lines)
    matcher = SequenceMatcher(None, list(input_lines), list(output_lines), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            kept[i1:i2] = [1] * (i2 - i1)
        elif tag == "replace":
            _map_fuzzy(input_lines, output_lines, range(i1, i2), range(j1, j2), kept)
    return kept


def _map_fuzzy(input_lines, output_lines, input_range: range, output_range: range, kept: list[int]) -> None:
    """Map each edited output line to the most similar not-yet-used input line after the previous match."""
    start = input_range.start
    for j in output_range:
        best, best_ratio = None, FUZZY_MIN_RATIO
        for i in range(start, input_range.stop):
            ratio = SequenceMatcher(None, input_lines[i], output_lines[j], autojunk=False).ratio()
            if ratio >= best_ratio:
                best, best_ratio = i, ratio
        if best is not None:
            kept[best] = 1
            start = best + 1


def line_counts(labels: Sequence[int], predicted: Sequence[int]) -> Counts:
    tp = sum(1 for y, p in zip(labels, predicted) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted) if p and not y)
    fn = sum(1 for y, p in zip(labels, predicted) if y and not p)
    return Counts(tp, fp, fn)


def words(text: str | None) -> Counter:
    return Counter(_TOKENS.findall(text.lower())) if text else Counter()


def word_counts(output: str | None, gold: str) -> Counts:
    """Bag-of-words overlap of the output with the gold main content."""
    predicted, reference = words(output), words(gold)
    overlap = sum((predicted & reference).values())
    return Counts(overlap, sum(predicted.values()) - overlap, sum(reference.values()) - overlap)


def balanced_accuracy(labels: Sequence[int], predicted: Sequence[int]) -> float:
    """Mean of the recall of each class present in `labels`."""
    recalls = []
    for cls in (0, 1):
        members = [p for y, p in zip(labels, predicted) if y == cls]
        if members:
            recalls.append(sum(1 for p in members if p == cls) / len(members))
    return sum(recalls) / len(recalls) if recalls else float("nan")


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), ties counting one half."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    positive_rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
