"""A binned additive logistic model: each feature is cut into quantile bins, each bin has a weight.

It learns a nonlinear shape per feature (like a GAM) yet predicts with one `searchsorted` per feature,
so inference is numpy only, thread-safe (read-only arrays) and small enough to commit as JSON.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdditiveModel:
    names: tuple[str, ...]
    edges: tuple[np.ndarray, ...]  # per feature: ascending bin edges (len k → k + 1 bins)
    weights: tuple[np.ndarray, ...]  # per feature: one weight per bin
    bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        total = np.full(features.shape[0], self.bias)
        for column, (edges, weights) in enumerate(zip(self.edges, self.weights)):
            total += weights[np.searchsorted(edges, features[:, column], side="right")]
        return total

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(features)))

    def to_json(self) -> dict:
        return {
            "names": list(self.names),
            "edges": [np.round(e, 6).tolist() for e in self.edges],
            "weights": [np.round(w, 5).tolist() for w in self.weights],
            "bias": round(float(self.bias), 6),
        }

    @classmethod
    def from_json(cls, data: dict) -> "AdditiveModel":
        return cls(
            names=tuple(data["names"]),
            edges=tuple(np.asarray(e, dtype=np.float64) for e in data["edges"]),
            weights=tuple(np.asarray(w, dtype=np.float64) for w in data["weights"]),
            bias=float(data["bias"]),
        )


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Distinct inner quantile cut points (a binary feature gets one edge, a constant none)."""
    cuts = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    distinct = np.unique(cuts)
    return distinct[distinct > values.min()] if distinct.size else distinct


def fit_additive(
    features: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    bins: int = 12,
    l2: float = 1e-4,
    steps: int = 200,
    learning_rate: float = 0.1,
    sample_weight: np.ndarray | None = None,
) -> AdditiveModel:
    """Fit by full-batch Adam on the weighted log-loss plus an L2 penalty on the bin weights."""
    edges = [quantile_edges(features[:, j], bins) for j in range(features.shape[1])]
    sizes = np.array([len(e) + 1 for e in edges])
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    index = np.stack(
        [np.searchsorted(e, features[:, j], side="right") for j, e in enumerate(edges)], axis=1
    ) + offsets
    flat_index = index.ravel()
    weight = np.ones(len(labels)) if sample_weight is None else sample_weight
    weight = weight / weight.sum()
    params = np.zeros(sizes.sum() + 1)  # last entry: bias
    moment, velocity = np.zeros_like(params), np.zeros_like(params)
    for step in range(1, steps + 1):
        logits = params[index].sum(axis=1) + params[-1]
        residual = (1.0 / (1.0 + np.exp(-logits)) - labels) * weight
        gradient = np.empty_like(params)
        gradient[:-1] = np.bincount(flat_index, np.repeat(residual, index.shape[1]), minlength=sizes.sum())
        gradient[:-1] += l2 * params[:-1]
        gradient[-1] = residual.sum()
        moment = 0.9 * moment + 0.1 * gradient
        velocity = 0.999 * velocity + 0.001 * gradient**2
        params -= learning_rate * (moment / (1 - 0.9**step)) / (np.sqrt(velocity / (1 - 0.999**step)) + 1e-8)
    weights = tuple(params[o : o + s].copy() for o, s in zip(offsets, sizes))
    return AdditiveModel(tuple(names), tuple(np.asarray(e) for e in edges), weights, float(params[-1]))
