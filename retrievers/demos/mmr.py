"""``mmr``: maximal marginal relevance over the nearest neighbours: each next
demonstration maximises ``(1 - diversity) * sim(input, d) - diversity * max sim(d, chosen)``,
so near-duplicates of a chosen demonstration give way to other close ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from middleware.errors import InvalidArgument
from middleware.options import parse_options
from retrievers.demos.base import Scored, Selection, SelectionJob, Strategy
from retrievers.demos.registry import register


@dataclass(frozen=True)
class MmrOptions:
    # Weight of diversity in [0, 1]: 0 is `similar`, 1 ignores the input after the first pick.
    diversity: float = 0.3
    # Nearest neighbours re-ranked (0: max(20, 4 k)).
    fetch: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise InvalidArgument(f"method 'mmr': option 'diversity' must be in [0, 1], got {self.diversity}")
        if self.fetch < 0:
            raise InvalidArgument(f"method 'mmr': option 'fetch' must be >= 0, got {self.fetch}")


class Mmr(Strategy):
    def __init__(self, options: MmrOptions) -> None:
        self.options = options

    def select(self, job: SelectionJob) -> Selection:
        import numpy as np

        fetch = max(self.options.fetch or max(20, 4 * job.k), job.depth)
        near = job.pool.nearest(job.vector, fetch, exclude=job.exclude)
        if not near:
            return Selection((), job.k, {"candidates": 0})
        vectors = job.pool.vectors([c.id for c in near])
        relevance = np.asarray([c.score for c in near], dtype=np.float32)
        pairwise = vectors @ vectors.T
        lam = self.options.diversity
        chosen: list[int] = []
        # Redundancy of each candidate: its highest similarity to anything chosen so far.
        redundancy = np.full(len(near), -np.inf, dtype=np.float32)
        left = np.ones(len(near), dtype=bool)
        while left.any() and len(chosen) < job.depth:
            gain = (1.0 - lam) * relevance - lam * np.where(np.isfinite(redundancy), redundancy, 0.0)
            gain[~left] = -np.inf
            best = int(np.argmax(gain))
            chosen.append(best)
            left[best] = False
            redundancy = np.maximum(redundancy, pairwise[best])
        return Selection(tuple(Scored(near[i].id, near[i].score) for i in chosen), job.k,
                         {"candidates": len(near), "diversity": lam})


@register("mmr", "nearest neighbours re-ranked for diversity (maximal marginal relevance)")
def _factory(options: Mapping[str, Any]) -> Strategy:
    return Mmr(parse_options(MmrOptions, options, "mmr"))
