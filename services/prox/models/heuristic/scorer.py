"""The learned scorers and the artefact that holds them (`model.json.gz`, written by scripts/train_heuristic.py)."""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .additive import AdditiveModel
from .features import LINE_FEATURES, PageCounts, block_features, context_features, doc_features, line_features

DEFAULT_ARTEFACT = Path(__file__).with_name("model.json.gz")


@dataclass(frozen=True)
class LineScorer:
    """P(line is main content): a per-line model, a model over the neighbours' scores, then one over the
    line's place relative to the page's main block of content."""

    first: AdditiveModel
    second: AdditiveModel
    third: AdditiveModel
    threshold: float

    def content_probabilities(self, text: str) -> np.ndarray:
        first_stage = line_features(PageCounts(text))
        logits = self.second.logits(context_features(self.first.logits(first_stage), first_stage))
        log_words = first_stage[:, LINE_FEATURES.index("log_words")]
        return self.third.probabilities(block_features(logits, log_words))

    def to_json(self) -> dict:
        return {"first": self.first.to_json(), "second": self.second.to_json(), "third": self.third.to_json(),
                "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: dict) -> "LineScorer":
        return cls(AdditiveModel.from_json(data["first"]), AdditiveModel.from_json(data["second"]),
                   AdditiveModel.from_json(data["third"]), float(data["threshold"]))


@dataclass(frozen=True)
class DocScorer:
    """P(document is worth keeping) from document-level quality signals."""

    model: AdditiveModel

    def keep_probabilities(self, texts) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.model.probabilities(np.stack([doc_features(text) for text in texts]))

    def to_json(self) -> dict:
        return {"model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "DocScorer":
        return cls(AdditiveModel.from_json(data["model"]))


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
