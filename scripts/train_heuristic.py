"""Train the `heuristic` backend's scorers from the shared data, cross-validate them, write the artefact.

    python scripts/train_heuristic.py [--data ../shared/data] [--out services/prox/models/heuristic/model.json.gz]
                                      [--results benchmarks/results/eval_wcxb_cv.json] [--skip-cv]

Line scorer: WCXB dev (`line_labels`), 5-fold cross-validation grouped by domain, compared through the real
executor with the C4 line rule and keeping everything. Doc scorer: HPLT inspection (`label`) plus the WCXB
raw pages (keep when the page has main content), 5 random stratified folds. Deterministic: fixed seeds, full-batch training, no timestamps in the artefact.
Uses numpy only.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from prox.eval.baselines import FixedRuleWriter, c4_line_rule_program, keep_everything_program
from prox.eval.data import read_jsonl
from prox.eval.metrics import balanced_accuracy, roc_auc
from prox.eval.refine import refine
from prox.eval.scoring import is_skipped, line_report
from prox.models.heuristic import HeuristicChunkWriter
from prox.models.heuristic.additive import fit_additive
from prox.models.heuristic.features import (BLOCK_FEATURES, CONTEXT_FEATURES, DOC_FEATURES, LINE_FEATURES,
                                            PageCounts, block_features, context_features, doc_features,
                                            line_features)
from prox.models.heuristic.scorer import DEFAULT_ARTEFACT, DocScorer, LineScorer, save_artefact

REPO = Path(__file__).resolve().parents[1]
FOLDS = 5
SEED = 20240917
THRESHOLDS = np.round(np.arange(0.2, 0.71, 0.025), 3)


def domain(row: dict) -> str:
    """The site of a page (the grouping key only: never a feature); the page itself when it has no URL."""
    host = urlsplit(row.get("url") or "").netloc.lower() or row["id"]
    return host[4:] if host.startswith("www.") else host


def grouped_folds(groups: list[str], folds: int) -> np.ndarray:
    """Fold of each item; all items of one group share a fold."""
    distinct = sorted(set(groups))
    np.random.default_rng(SEED).shuffle(distinct)
    fold_of = {group: i % folds for i, group in enumerate(distinct)}
    return np.array([fold_of[g] for g in groups])


def stratified_folds(labels: np.ndarray, folds: int) -> np.ndarray:
    out = np.empty(len(labels), dtype=int)
    rng = np.random.default_rng(SEED)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        out[members] = np.arange(len(members)) % folds
    return out


# ---------------------------------------------------------------------------------------------
# Line scorer

def page_matrices(rows: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(line_features(PageCounts(r["text"])), np.asarray(r["line_labels"], dtype=np.float64)) for r in rows]


def _page_f1(predicted: np.ndarray, labels: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """F1 of each threshold's row of `predicted`, lines weighted by `weight`."""
    tp = (predicted & (labels > 0)) @ weight
    wrong = (predicted != (labels > 0)) @ weight
    return np.where(2 * tp + wrong > 0, 2 * tp / np.maximum(2 * tp + wrong, 1e-9), 1.0)


def macro_f1_by_threshold(probabilities, labels, words) -> np.ndarray:
    """Per threshold: mean over pages of line F1 plus word-weighted line F1 (the two target metrics)."""
    scores = np.zeros(len(THRESHOLDS))
    for p, y, w in zip(probabilities, labels, words):
        predicted = p[None, :] >= THRESHOLDS[:, None]
        scores += _page_f1(predicted, y, np.ones_like(w)) + _page_f1(predicted, y, w)
    return scores / (2 * len(probabilities))


def fit_line_scorer(pages: list[tuple[np.ndarray, np.ndarray]]) -> LineScorer:
    """Three stacked stages; lines weighted by 1 + sqrt(words) so that long lines (most of the words) count more."""
    features = np.vstack([f for f, _ in pages])
    labels = np.concatenate([y for _, y in pages])
    log_words = [f[:, LINE_FEATURES.index("log_words")] for f, _ in pages]
    weight = 1.0 + np.sqrt(np.expm1(np.concatenate(log_words)))
    first = fit_additive(features, labels, LINE_FEATURES, sample_weight=weight)
    contexts = [context_features(first.logits(f), f) for f, _ in pages]
    second = fit_additive(np.vstack(contexts), labels, CONTEXT_FEATURES, sample_weight=weight)
    blocks = [block_features(second.logits(c), w) for c, w in zip(contexts, log_words)]
    third = fit_additive(np.vstack(blocks), labels, BLOCK_FEATURES, sample_weight=weight)
    probabilities = [third.probabilities(b) for b in blocks]
    by_threshold = macro_f1_by_threshold(probabilities, [y for _, y in pages], [np.expm1(w) for w in log_words])
    return LineScorer(first, second, third, float(THRESHOLDS[int(np.argmax(by_threshold))]))


def line_trainable(row: dict) -> bool:
    """Pages whose line labels describe main content: not JS-rendered, and with some content (pages without
    any are a doc-level drop decision, not a line-level one)."""
    return bool(row["gold"].strip()) and not is_skipped(row)


def cross_validate_lines(rows: list[dict], pages, doc: DocScorer) -> dict:
    folds = grouped_folds([domain(r) for r in rows], FOLDS)
    trainable = np.array([line_trainable(r) for r in rows])
    outputs: dict = {}
    thresholds = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(FOLDS):
            train = [pages[i] for i in np.flatnonzero((folds != fold) & trainable)]
            scorer = fit_line_scorer(train)
            thresholds.append(scorer.threshold)
            path = Path(tmp) / f"fold{fold}.json.gz"
            save_artefact(path, scorer, doc, {"fold": fold})
            test_rows = [rows[i] for i in np.flatnonzero(folds == fold)]
            outputs.update(refine(test_rows, None, HeuristicChunkWriter(str(path)))[0])
            print(f"fold {fold}: threshold {scorer.threshold}", file=sys.stderr)
    methods = {
        "heuristic": outputs,
        "c4_line_rule": refine(rows, None, FixedRuleWriter(c4_line_rule_program))[0],
        "keep_everything": refine(rows, None, FixedRuleWriter(keep_everything_program))[0],
    }
    return {"folds": FOLDS, "grouped_by": "domain", "fold_thresholds": thresholds,
            **{name: line_report(rows, out)[0] for name, out in methods.items()}}


# ---------------------------------------------------------------------------------------------
# Doc scorer

def half_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Square root of the class-balancing weights: fully balanced weights drop a third of HPLT (and over half of
    its Chinese and Gaelic pages) at keep_prob 0.5; half-balanced ones keep about as much as the gold does."""
    positive = labels.mean()
    return np.where(labels > 0, np.sqrt(0.5 / positive), np.sqrt(0.5 / (1 - positive)))


def fit_doc_scorer(features: np.ndarray, labels: np.ndarray) -> DocScorer:
    return DocScorer(fit_additive(features, labels, DOC_FEATURES, bins=8, l2=1e-3,
                                  sample_weight=half_balanced_weights(labels)))


def cross_validate_docs(features: np.ndarray, labels: np.ndarray, groups: list[str]) -> dict:
    """Out-of-fold scores; metrics per group (source and HPLT language)."""
    folds = stratified_folds(labels, FOLDS)
    probabilities = np.zeros(len(labels))
    for fold in range(FOLDS):
        train = folds != fold
        probabilities[~train] = fit_doc_scorer(features[train], labels[train]).model.probabilities(
            features[~train])
    predicted = (probabilities >= 0.5).astype(int)

    def metrics(member: np.ndarray) -> dict:
        y = labels[member].astype(int).tolist()
        return {"documents": int(member.sum()), "keep_rate": float(predicted[member].mean()),
                "gold_keep_rate": float(labels[member].mean()),
                "balanced_accuracy": balanced_accuracy(y, predicted[member].tolist()),
                "roc_auc": roc_auc(y, probabilities[member].tolist())}

    hplt = np.array([g != "wcxb" for g in groups])
    return {
        "folds": FOLDS, "split": "random, stratified by label",
        "hplt": metrics(hplt), "wcxb_pages": metrics(~hplt),
        "by_group": {g: metrics(np.array([x == g for x in groups])) for g in sorted(set(groups))},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(DEFAULT_ARTEFACT))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "eval_wcxb_cv.json"))
    parser.add_argument("--skip-cv", action="store_true", help="only train and write the artefact")
    args = parser.parse_args()
    data = Path(args.data)
    wcxb = [dict(r, id=str(r["id"])) for r in read_jsonl(data / "wcxb-dev.jsonl.gz")]
    hplt = list(read_jsonl(data / "hplt-inspection.jsonl.gz"))
    # Doc scorer: HPLT excerpts plus the WCXB full pages (raw pages with menus and footers are what the
    # doc-refiner sees; a page with main content is a keep, a page without any is a drop).
    doc_rows = hplt + wcxb
    doc_x = np.stack([doc_features(r["text"]) for r in doc_rows])
    doc_y = np.array([int(r["label"]) for r in hplt] + [int(bool(r["gold"].strip())) for r in wcxb], dtype=np.float64)
    doc = fit_doc_scorer(doc_x, doc_y)
    pages = page_matrices(wcxb)
    results: dict = {}
    if not args.skip_cv:
        results["doc_cv"] = cross_validate_docs(doc_x, doc_y, [r["meta"]["lang"] for r in hplt] + ["wcxb"] * len(wcxb))
        results["wcxb_lines_cv"] = cross_validate_lines(wcxb, pages, doc)
    line = fit_line_scorer([p for p, r in zip(pages, wcxb) if line_trainable(r)])
    provenance = {"line": "wcxb-dev.jsonl.gz (non-empty gold, gold_coverage >= 0.8)",
                  "doc": "hplt-inspection.jsonl.gz (label) + wcxb-dev.jsonl.gz (keep = non-empty gold)",
                  "features": {"line": list(LINE_FEATURES), "doc": list(DOC_FEATURES)}}
    version = save_artefact(Path(args.out), line, doc, provenance)
    results["artefact"] = {"path": str(Path(args.out).relative_to(REPO)) if Path(args.out).is_relative_to(REPO)
                           else args.out, "version": version, "threshold": line.threshold}
    print(json.dumps(results, indent=2, sort_keys=True))
    if not args.skip_cv:
        Path(args.results).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
