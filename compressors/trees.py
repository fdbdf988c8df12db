"""Gradient-boosted trees, evaluated with numpy from a small JSON description.

The training script fits scikit-learn's HistGradientBoostingClassifier and
exports its trees here (``Forest.from_sklearn``); serving needs only numpy, and
every tree is walked for every row at once (one gather per depth level), which
takes well under a millisecond for a request's few hundred units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def expect_features(spec: dict, expected: tuple[str, ...]) -> None:
    """A head's JSON must name the features the code computes, in order."""
    if tuple(spec["features"]) != expected:
        raise RuntimeError("the extractive head was trained on other features; "
                           "retrain: python bench/train_extractive_head.py")


@dataclass(frozen=True)
class Forest:
    names: tuple[str, ...]
    feature: np.ndarray    # [trees, nodes] feature index of each split
    threshold: np.ndarray  # [trees, nodes] go left when x <= threshold
    left: np.ndarray       # [trees, nodes]
    right: np.ndarray      # [trees, nodes]
    leaf: np.ndarray       # [trees, nodes] bool; padding nodes are leaves worth 0
    value: np.ndarray      # [trees, nodes] leaf values (learning rate included)
    baseline: float
    depth: int

    def logit(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        node = np.zeros((self.feature.shape[0], n), dtype=np.int64)
        rows = np.arange(n)[None, :]

        def at(table: np.ndarray) -> np.ndarray:  # each tree's entry at its current node, per row
            return np.take_along_axis(table, node, axis=1)

        for _ in range(self.depth):
            go_left = x[rows, at(self.feature)] <= at(self.threshold)
            node = np.where(at(self.leaf), node, np.where(go_left, at(self.left), at(self.right)))
        return (np.take_along_axis(self.value, node, axis=1).sum(axis=0) + self.baseline).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-self.logit(x)))).astype(np.float32)

    def to_json(self) -> dict:
        return {"kind": "forest", "features": list(self.names), "baseline": self.baseline, "depth": self.depth,
                **{k: getattr(self, k).tolist() for k in ("feature", "threshold", "left", "right", "leaf", "value")}}

    @classmethod
    def from_json(cls, spec: dict, expected: tuple[str, ...]) -> "Forest":
        expect_features(spec, expected)
        arrays = {k: np.array(spec[k], dtype=t) for k, t in (("feature", np.int64), ("threshold", np.float64),
                                                              ("left", np.int64), ("right", np.int64),
                                                              ("leaf", bool), ("value", np.float64))}
        return cls(expected, baseline=float(spec["baseline"]), depth=int(spec["depth"]), **arrays)

    @classmethod
    def from_sklearn(cls, model, names: tuple[str, ...]) -> "Forest":
        """From a fitted binary HistGradientBoostingClassifier (numeric features, no missing values)."""
        trees = [stage[0].nodes for stage in model._predictors]
        width = max(len(t) for t in trees)
        out = {"feature": np.zeros((len(trees), width), np.int64), "threshold": np.zeros((len(trees), width)),
               "left": np.zeros((len(trees), width), np.int64), "right": np.zeros((len(trees), width), np.int64),
               "leaf": np.ones((len(trees), width), bool), "value": np.zeros((len(trees), width))}
        for i, t in enumerate(trees):
            k = len(t)
            out["feature"][i, :k], out["threshold"][i, :k] = t["feature_idx"], t["num_threshold"]
            out["left"][i, :k], out["right"][i, :k] = t["left"], t["right"]
            out["leaf"][i, :k], out["value"][i, :k] = t["is_leaf"].astype(bool), t["value"]
        depth = int(max(t["depth"].max() for t in trees))
        return cls(tuple(names), baseline=float(np.ravel(model._baseline_prediction)[0]), depth=depth, **out)
