"""``similar``: the pool's nearest neighbours of the input (KATE, Liu et al. 2022:
demonstrations semantically close to the test input beat random ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from middleware.options import parse_options
from retrievers.demos.base import Selection, SelectionJob, Strategy
from retrievers.demos.registry import register


@dataclass(frozen=True)
class SimilarOptions:
    pass


class Similar(Strategy):
    def select(self, job: SelectionJob) -> Selection:
        ranked = job.pool.nearest(job.vector, job.depth, exclude=job.exclude)
        return Selection(tuple(ranked), job.k)


@register("similar", "nearest neighbours of the input (KATE)")
def _factory(options: Mapping[str, Any]) -> Strategy:
    parse_options(SimilarOptions, options, "similar")
    return Similar()
