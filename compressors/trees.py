"""Gradient-boosted trees, evaluated with numpy from a small JSON description.

The training script fits scikit-learn's HistGradientBoostingClassifier and
exports its trees here (``Forest.from_sklearn``); serving needs only numpy, and
every tree is walked for every row at once, one level at a time, through flat tables
where a leaf points at itself (about 2 ms for 200 trees over 300 units on one core).
Several forests fitted on resamples of the data average into one (``Forest.average``:
their trees side by side, each leaf worth its share).
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

    def __post_init__(self) -> None:
        # Flat tables indexed by tree * width + node; a leaf's children are itself and its
        # threshold +inf, so walking past a leaf stays there and no leaf test is needed.
        trees, width = self.feature.shape
        at = np.arange(trees * width).reshape(trees, width)
        start = np.arange(trees, dtype=np.int64) * width
        flat = {"feature": np.where(self.leaf, 0, self.feature),
                "threshold": np.where(self.leaf, np.inf, self.threshold),
                "left": np.where(self.leaf, at, self.left + start[:, None]),
                "right": np.where(self.leaf, at, self.right + start[:, None]), "value": self.value}
        object.__setattr__(self, "_flat", {k: np.ascontiguousarray(v).ravel() for k, v in flat.items()})
        object.__setattr__(self, "_roots", start)

    def logit(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        t = self._flat
        columns = np.ascontiguousarray(np.asarray(x).T)
        rows = np.arange(n)
        node = np.repeat(self._roots[:, None], n, axis=1)  # [trees, rows]
        for _ in range(self.depth):
            go_left = columns[t["feature"][node], rows] <= t["threshold"][node]
            node = np.where(go_left, t["left"][node], t["right"][node])
        return (t["value"][node].sum(axis=0) + self.baseline).astype(np.float32)

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
    def average(cls, forests: list["Forest"]) -> "Forest":
        """One forest whose logit is the mean of ``forests``' logits (bagging)."""
        if not forests:
            raise ValueError("no forests to average")
        if len({f.names for f in forests}) != 1:
            raise ValueError("forests over different features cannot be averaged")
        width = max(f.feature.shape[1] for f in forests)

        def padded(f: "Forest", name: str) -> np.ndarray:
            table = getattr(f, name)
            fill = {"leaf": True}.get(name, 0)
            return np.pad(table, ((0, 0), (0, width - table.shape[1])), constant_values=fill)

        tables = {k: np.concatenate([padded(f, k) for f in forests])
                  for k in ("feature", "threshold", "left", "right", "leaf", "value")}
        tables["value"] = tables["value"] / len(forests)
        return cls(forests[0].names, baseline=float(np.mean([f.baseline for f in forests])),
                   depth=max(f.depth for f in forests), **tables)

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
