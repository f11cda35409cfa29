"""Text table and HTML report of an evaluation."""
from __future__ import annotations

import html
import math
from typing import Any

from .scoring import PageResult

TABLE_COLUMNS = ("pages", "dropped", "line_precision_macro", "line_recall_macro", "line_f1_macro",
                 "line_f1_micro", "word_f1_macro", "word_f1_micro")

# (gold label, predicted keep) → CSS class and legend text
LINE_CLASSES = {
    (1, 1): ("tp", "content kept"),
    (1, 0): ("fn", "content removed"),
    (0, 1): ("fp", "boilerplate kept"),
    (0, 0): ("tn", "boilerplate removed"),
}

STYLE = """
body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}
.page{margin:1.5em 0;border-top:2px solid #444}.lines{font-family:monospace;font-size:12px;white-space:pre-wrap}
.tp{background:#d9f2d9}.fn{background:#f8c6c6;text-decoration:line-through}.fp{background:#ffe2b3}.tn{color:#999}
"""


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def text_table(summary: dict[str, Any]) -> str:
    """Overall and per-page-type rows of the line summary, plus the keep/drop summary."""
    out = []
    if "lines" in summary:
        lines = summary["lines"]
        out.append("\t".join(["group", *TABLE_COLUMNS]))
        out.append("\t".join(["all", *(_format(lines[c]) for c in TABLE_COLUMNS)]))
        for name, group in lines["by_page_type"].items():
            out.append("\t".join([name, *(_format(group[c]) for c in TABLE_COLUMNS)]))
        out.append(f"skipped (gold_coverage < 0.8): {lines['skipped_low_coverage']}; empty-gold pages dropped: "
                   f"{lines['empty_gold_dropped']}/{lines['empty_gold_pages']}")
    if "keep" in summary:
        keep = summary["keep"]
        out.append("keep/drop: " + ", ".join(f"{k}={_format(v)}" for k, v in keep.items() if k != "operating_curve"))
        if keep.get("operating_curve"):
            out.append("operating curve (keep_prob >= threshold):")
            out.append("\t".join(("threshold", "keep_rate", "balanced_accuracy", "kept_of_gold_keeps")))
            for point in keep["operating_curve"]:
                out.append("\t".join(_format(point[c]) for c in ("threshold", "keep_rate", "balanced_accuracy",
                                                                  "kept_of_gold_keeps")))
    return "\n".join(out)


def _page_html(result: PageResult, input_lines: list[str]) -> str:
    rows = []
    for line, label, kept in zip(input_lines, result.labels, result.predicted):
        css, _ = LINE_CLASSES[(label, kept)]
        rows.append(f'<div class="{css}">{html.escape(line) or "&nbsp;"}</div>')
    return (f'<div class="page"><h3>{html.escape(result.id)} ({html.escape(result.page_type)}): line F1 '
            f'{result.line_f1:.3f}, word F1 {result.word_f1:.3f}{", dropped" if result.dropped else ""}</h3>'
            f'<div class="lines">{"".join(rows)}</div></div>')


def html_report(summary: dict[str, Any], results: list[PageResult], texts: dict[str, str], worst: int) -> str:
    """Summary table, then the `worst` pages by line F1 as before/after views of every input line."""
    legend = " ".join(f'<span class="{css}">{text}</span>' for css, text in LINE_CLASSES.values())
    table = "".join(f"<tr><td>{html.escape(row.replace(chr(9), ' | '))}</td></tr>"
                    for row in text_table(summary).split("\n"))
    pages = sorted(results, key=lambda r: (r.line_f1, r.word_f1))[:worst]
    body = "".join(_page_html(r, texts[r.id].split("\n")) for r in pages)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>prox eval</title><style>{STYLE}</style>"
            f"</head><body><h1>prox eval</h1><table>{table}</table><h2>Worst {len(pages)} pages</h2>"
            f"<p>{legend}</p>{body}</body></html>")
