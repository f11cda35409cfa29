"""The learned scorers and the artefact that holds them (`model.json.gz`, written by scripts/train_heuristic.py)."""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm
import numpy as np

from .features import (DOC_FEATURES, LINE_FEATURES, MODEL_LINE_FEATURES, PageCounts, doc_features, line_features,
                       model_line_features)

DEFAULT_ARTEFACT = Path(__file__).with_name("model.json.gz")


@dataclass(frozen=True, eq=False)
class LineScorer:
    """P(line is main content): gradient-boosted trees (LightGBM) over the line's own signals, its neighbours'
    and its size relative to the page (`features.model_line_features`).

    `threshold` is only used when a caller asks for a fixed threshold; by default the writer keeps the lines
    that maximise the expected word-level F1 of the page under these probabilities."""

    model: str  # LightGBM model text (the committed form; the Booster is built from it)
    threshold: float
    booster: lightgbm.Booster = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "booster", lightgbm.Booster(model_str=self.model))

    def scored_lines(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per line of `text.split("\\n")`: P(main content), words (CJK characters count as words), and whether
        the line is a paragraph (>= 12 words ending like a sentence, or >= 25 words)."""
        first_stage = line_features(PageCounts(text))
        probabilities = self.booster.predict(model_line_features(first_stage), num_threads=1)
        return (probabilities, np.expm1(first_stage[:, LINE_FEATURES.index("log_words")]),
                first_stage[:, LINE_FEATURES.index("paragraph")] > 0)

    def to_json(self) -> dict:
        return {"kind": "lightgbm", "model": self.model, "threshold": self.threshold,
                "features": list(MODEL_LINE_FEATURES)}

    @classmethod
    def from_json(cls, data: dict) -> "LineScorer":
        if data.get("kind") != "lightgbm" or list(data.get("features", [])) != list(MODEL_LINE_FEATURES):
            raise ValueError("line scorer artefact does not match this code's features: retrain it")
        return cls(data["model"], float(data["threshold"]))


@dataclass(frozen=True, eq=False)
class DocScorer:
    """P(document is worth keeping): gradient-boosted trees (LightGBM) over whole-document quality signals
    (`features.doc_features`), then a Platt calibration fitted on out-of-fold scores of held-out sources,
    so that keep_prob >= 0.5 is the balanced keep/drop decision and a higher threshold filters harder
    (the calibration is strictly increasing in the trees' score)."""

    model: str  # LightGBM model text
    slope: float
    intercept: float
    booster: lightgbm.Booster = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "booster", lightgbm.Booster(model_str=self.model))

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return self.booster.predict(features, raw_score=True, num_threads=1)

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.slope * raw + self.intercept, -50.0, 50.0)))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return self.calibrated(self.raw_scores(features))

    def keep_probabilities(self, texts) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.probabilities(np.stack([doc_features(text) for text in texts]))

    def to_json(self) -> dict:
        return {"kind": "lightgbm-platt", "model": self.model, "slope": self.slope, "intercept": self.intercept,
                "features": list(DOC_FEATURES)}

    @classmethod
    def from_json(cls, data: dict) -> "DocScorer":
        if data.get("kind") != "lightgbm-platt" or list(data.get("features", [])) != list(DOC_FEATURES):
            raise ValueError("doc scorer artefact does not match this code's features: retrain it")
        return cls(data["model"], float(data["slope"]), float(data["intercept"]))


@dataclass(frozen=True)
class Artefact:
    version: str
    line: LineScorer
    doc: DocScorer


def save_artefact(path: Path, line: LineScorer, doc: DocScorer, provenance: dict) -> str:
    """Write the artefact reproducibly (no timestamps) and return its version: a hash of the content."""
    body = {"line": line.to_json(), "doc": doc.to_json(), "provenance": provenance}
    version = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    payload = json.dumps({"version": version, **body}, sort_keys=True).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(payload)
    return version


_CACHE: dict[str, Artefact] = {}


def load_artefact(path: str | Path | None = None) -> Artefact:
    """The artefact at `path` (default: the committed one), parsed once per process."""
    resolved = str(Path(path) if path else DEFAULT_ARTEFACT)
    if resolved not in _CACHE:
        opener = gzip.open if resolved.endswith(".gz") else open
        with opener(resolved, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
        _CACHE[resolved] = Artefact(data["version"], LineScorer.from_json(data["line"]),
                                    DocScorer.from_json(data["doc"]))
    return _CACHE[resolved]
