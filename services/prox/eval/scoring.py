"""Scoring whole data sets: per-page results, then macro/micro summaries overall and per page type."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from .metrics import (Counts, balanced_accuracy, kept_input_lines, line_counts, precision_recall_f1, roc_auc,
                      word_counts)

MIN_GOLD_COVERAGE = 0.8


@dataclass
class PageResult:
    id: str
    page_type: str
    lines: Counts
    words: Counts
    dropped: bool
    labels: list[int] = field(repr=False)
    predicted: list[int] = field(repr=False)

    @property
    def line_f1(self) -> float:
        return precision_recall_f1(self.lines)[2]

    @property
    def word_f1(self) -> float:
        return precision_recall_f1(self.words)[2]


def page_type(row: dict) -> str:
    return (row.get("meta") or {}).get("page_type") or "unknown"


def score_page(row: dict, output: Optional[str]) -> PageResult:
    """`output` is the refined text, None when the page was dropped."""
    input_lines = row["text"].split("\n")
    predicted = kept_input_lines(input_lines, output.split("\n")) if output is not None else [0] * len(input_lines)
    labels = [int(y) for y in row["line_labels"]]
    return PageResult(row["id"], page_type(row), line_counts(labels, predicted), word_counts(output, row["gold"]),
                      output is None, labels, predicted)


def is_skipped(row: dict) -> bool:
    """The page's content is rendered by JavaScript: deleting lines cannot recover it.

    Pages with empty gold are never skipped (their coverage is 0 by construction): they score the drop decision.
    """
    return bool(row["gold"].strip()) and row.get("gold_coverage", 1.0) < MIN_GOLD_COVERAGE


def _pooled(counts: Iterable[Counts]) -> Counts:
    tp = fp = fn = 0
    for c in counts:
        tp, fp, fn = tp + c.tp, fp + c.fp, fn + c.fn
    return Counts(tp, fp, fn)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarize_lines(results: list[PageResult]) -> dict[str, Any]:
    per_page = [precision_recall_f1(r.lines) for r in results]
    micro = precision_recall_f1(_pooled(r.lines for r in results))
    word_micro = precision_recall_f1(_pooled(r.words for r in results))
    return {
        "pages": len(results),
        "dropped": sum(r.dropped for r in results),
        "line_precision_macro": _mean([p for p, _, _ in per_page]),
        "line_recall_macro": _mean([r for _, r, _ in per_page]),
        "line_f1_macro": _mean([f for _, _, f in per_page]),
        "line_precision_micro": micro[0],
        "line_recall_micro": micro[1],
        "line_f1_micro": micro[2],
        "word_f1_macro": _mean([r.word_f1 for r in results]),
        "word_f1_micro": word_micro[2],
    }


def line_report(rows: list[dict], outputs: dict[str, Optional[str]]) -> tuple[dict[str, Any], list[PageResult]]:
    """Scores of every line-labelled gold row against `outputs` (id → text, None or absent = dropped)."""
    scored = [r for r in rows if not is_skipped(r)]
    results = [score_page(row, outputs.get(row["id"])) for row in scored]
    by_type: dict[str, list[PageResult]] = defaultdict(list)
    for result in results:
        by_type[result.page_type].append(result)
    empty_gold = [r for r, row in zip(results, scored) if not row["gold"].strip()]
    summary = {
        **summarize_lines(results),
        "skipped_low_coverage": len(rows) - len(scored),
        "empty_gold_pages": len(empty_gold),
        "empty_gold_dropped": sum(r.line_f1 == 1.0 for r in empty_gold),
        "by_page_type": {name: summarize_lines(group) for name, group in sorted(by_type.items())},
    }
    return summary, results


def keep_report(rows: list[dict], outputs: dict[str, Optional[str]], keep_probs: dict[str, float]) -> dict[str, Any]:
    """Keep/drop decisions against `label` ("1" keep, "0" drop); ROC-AUC when keep scores are given."""
    labels = [int(row["label"]) for row in rows]
    predicted = [int(outputs.get(row["id"]) is not None) for row in rows]
    summary: dict[str, Any] = {
        "documents": len(rows),
        "kept": sum(predicted),
        "balanced_accuracy": balanced_accuracy(labels, predicted),
    }
    scored = [(y, keep_probs[row["id"]]) for y, row in zip(labels, rows) if row["id"] in keep_probs]
    if scored and len(scored) == len(rows):
        summary["roc_auc"] = roc_auc([y for y, _ in scored], [s for _, s in scored])
        summary["operating_curve"] = operating_curve([y for y, _ in scored], [s for _, s in scored])
    return summary


OPERATING_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def operating_curve(labels: list[int], scores: list[float],
                    thresholds: Iterable[float] = OPERATING_THRESHOLDS) -> list[dict[str, float]]:
    """Keep rate, balanced accuracy and the share of gold keeps kept when keeping keep_prob >= t, per threshold
    (what `--keep-threshold t` would do), so that a user can choose the threshold for their corpus."""
    curve = []
    positives = sum(labels)
    for threshold in thresholds:
        kept = [int(s >= threshold) for s in scores]
        curve.append({
            "threshold": threshold,
            "keep_rate": sum(kept) / len(kept) if kept else float("nan"),
            "balanced_accuracy": balanced_accuracy(labels, kept),
            "kept_of_gold_keeps": (sum(k for k, y in zip(kept, labels) if y) / positives) if positives
            else float("nan"),
        })
    return curve
