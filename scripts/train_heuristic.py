"""Train the `heuristic` backend's scorers from the shared data, cross-validate them, write the artefact.

    python scripts/train_heuristic.py [--data ../shared/data] [--out services/prox/models/heuristic/model.json.gz]
                                      [--results benchmarks/results/eval_wcxb_cv.json] [--skip-cv]

Line scorer: WCXB dev (`line_labels`), 5-fold cross-validation grouped by domain, compared through the real
executor with the C4 line rule and keeping everything. Doc scorer: HPLT inspection (`label`) plus the WCXB
raw pages (keep when the page has main content), 5 random stratified folds. Deterministic: fixed seeds, full-batch training, no timestamps in the artefact.
Uses numpy and LightGBM (the line model).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import lightgbm
import numpy as np

from prox.eval.baselines import FixedRuleWriter, c4_line_rule_program, keep_everything_program
from prox.eval.data import read_jsonl
from prox.eval.metrics import balanced_accuracy, roc_auc
from prox.eval.refine import refine
from prox.eval.scoring import is_skipped, line_report
from prox.models.heuristic import HeuristicChunkWriter
from prox.models.heuristic.additive import fit_additive
from prox.models.heuristic.features import (DOC_FEATURES, LINE_FEATURES, MODEL_LINE_FEATURES, PageCounts,
                                            doc_features, line_features, model_line_features)
from prox.models.heuristic.scorer import DEFAULT_ARTEFACT, DocScorer, LineScorer, save_artefact

REPO = Path(__file__).resolve().parents[1]
FOLDS = 5
SEED = 20240917


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


# LightGBM, deterministic (fixed seeds and threads, row-wise histograms): the same data gives the same model text.
LINE_PARAMS = dict(
    objective="binary", learning_rate=0.12, num_leaves=31, min_data_in_leaf=100, feature_fraction=0.5, max_bin=63,
    bagging_fraction=0.5, bagging_freq=1, lambda_l2=1.0, num_threads=2, seed=SEED % 10007, deterministic=True,
    force_row_wise=True, verbose=-1,
)
LINE_TREES = 200
# Only used when a caller fixes a threshold; the default decision maximises the expected word-level F1.
FIXED_THRESHOLD = 0.5


def page_weights(first_stage: np.ndarray) -> np.ndarray:
    """Each page counts once, half by lines and half by words (the two target metrics are page means of line F1
    and of word F1): a line weighs 1/lines + words/page words."""
    words = np.expm1(first_stage[:, LINE_FEATURES.index("log_words")])
    return 500.0 * (1.0 / max(len(words), 1) + words / max(words.sum(), 1.0))


def fit_line_scorer(pages: list[tuple[np.ndarray, np.ndarray]]) -> LineScorer:
    """Gradient-boosted trees over `model_line_features` (the line, its neighbours, the page)."""
    dataset = lightgbm.Dataset(
        np.vstack([model_line_features(f) for f, _ in pages]), np.concatenate([y for _, y in pages]),
        weight=np.concatenate([page_weights(f) for f, _ in pages]), feature_name=list(MODEL_LINE_FEATURES),
        free_raw_data=True)
    booster = lightgbm.train(LINE_PARAMS, dataset, num_boost_round=LINE_TREES)
    return LineScorer(booster.model_to_string(), FIXED_THRESHOLD)


def line_trainable(row: dict) -> bool:
    """Pages whose line labels describe main content: not JS-rendered, and with some content (pages without
    any are a doc-level drop decision, not a line-level one)."""
    return bool(row["gold"].strip()) and not is_skipped(row)


def cross_validate_lines(rows: list[dict], pages, doc: DocScorer) -> dict:
    folds = grouped_folds([domain(r) for r in rows], FOLDS)
    trainable = np.array([line_trainable(r) for r in rows])
    outputs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(FOLDS):
            train = [pages[i] for i in np.flatnonzero((folds != fold) & trainable)]
            scorer = fit_line_scorer(train)
            path = Path(tmp) / f"fold{fold}.json.gz"
            save_artefact(path, scorer, doc, {"fold": fold})
            test_rows = [rows[i] for i in np.flatnonzero(folds == fold)]
            outputs.update(refine(test_rows, None, HeuristicChunkWriter(str(path)))[0])
            print(f"fold {fold} done", file=sys.stderr)
    methods = {
        "heuristic": outputs,
        "c4_line_rule": refine(rows, None, FixedRuleWriter(c4_line_rule_program))[0],
        "keep_everything": refine(rows, None, FixedRuleWriter(keep_everything_program))[0],
    }
    return {"folds": FOLDS, "grouped_by": "domain", "decision": "expected word-F1 (writer default)",
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
                  "features": {"line": list(MODEL_LINE_FEATURES), "doc": list(DOC_FEATURES)},
                  "line_model": {"lightgbm": lightgbm.__version__, "trees": LINE_TREES, **LINE_PARAMS}}
    version = save_artefact(Path(args.out), line, doc, provenance)
    results["artefact"] = {"path": str(Path(args.out).relative_to(REPO)) if Path(args.out).is_relative_to(REPO)
                           else args.out, "version": version, "fixed_threshold": line.threshold,
                           "bytes": Path(args.out).stat().st_size}
    print(json.dumps(results, indent=2, sort_keys=True))
    if not args.skip_cv:
        Path(args.results).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
