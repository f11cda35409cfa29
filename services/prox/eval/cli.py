"""`prox eval`: score refined output (or a backend's programs) against labelled gold data."""
from __future__ import annotations



def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score refined documents against gold (line removal, word F1, keep/drop)",
        description="Score predictions (--pred) or a backend run on the gold inputs (--backend) against gold "
        "JSONL: rows with line_labels/gold score line removal, rows with label score keep/drop.",
    )
    parser.add_argument("--gold", required=True, help="gold JSONL(.gz): id, text, and line_labels+gold or label")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pred", help='predictions JSONL(.gz): {"id", "text"} (null/absent = dropped), '
                        "optional keep_prob")
    source.add_argument("--backend", choices=("heuristic", "hf"), help="refine the gold inputs with this backend")
    parser.add_argument("--model-path", help="backend model path (default: the committed heuristic artefact)")
    parser.add_argument("--stages", default="doc,chunk", help="backend stages to run: doc, chunk or doc,chunk")
    parser.add_argument("--limit", type=int, help="score only the first N gold rows")
    parser.add_argument("--json", dest="json_out", metavar="OUT.json", help="write the summary as JSON")
    parser.add_argument("--html", dest="html_out", metavar="REPORT.html", help="write an HTML report")
    parser.add_argument("--worst", type=int, default=20, help="pages shown in the HTML report (default 20)")
    parser.set_defaults(func=run)


def _backend_outputs(rows: list[dict], args) -> tuple[dict, dict]:
    from prox.models.backends import load_chunk_writer, load_doc_writer

    from .refine import refine

    stages = set(args.stages.split(","))
    doc_writer = load_doc_writer(args.backend, args.model_path) if "doc" in stages else None
    chunk_writer = load_chunk_writer(args.backend, args.model_path) if "chunk" in stages else None
    return refine(rows, doc_writer, chunk_writer)


def evaluate(rows: list[dict], outputs: dict, keep_probs: dict) -> tuple[dict, list]:
    """The summary ({"lines": ..., "keep": ...} for the kinds of gold present) and the per-page line results."""
    from .scoring import keep_report, line_report

    summary: dict = {}
    results: list = []
    line_rows = [row for row in rows if "line_labels" in row]
    keep_rows = [row for row in rows if "label" in row]
    if line_rows:
        summary["lines"], results = line_report(line_rows, outputs)
    if keep_rows:
        summary["keep"] = keep_report(keep_rows, outputs, keep_probs)
    return summary, results


def run(args) -> int:
    import itertools
    import json

    from .data import read_jsonl, read_predictions
    from .report import html_report, text_table

    rows = list(itertools.islice(read_jsonl(args.gold), args.limit))
    for row in rows:
        row["id"] = str(row["id"])
    outputs, keep_probs = read_predictions(args.pred) if args.pred else _backend_outputs(rows, args)
    summary, results = evaluate(rows, outputs, keep_probs)
    print(text_table(summary))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
    if args.html_out:
        texts = {row["id"]: row["text"] for row in rows}
        with open(args.html_out, "w", encoding="utf-8") as handle:
            handle.write(html_report(summary, results, texts, args.worst))
    return 0
