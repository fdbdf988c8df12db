"""``balanced``: label-balanced nearest neighbours. Each label's nearest demonstrations
are taken in turn (labels ordered by their best neighbour), so the prompt shows every
likely label instead of k copies of one, countering the majority-label bias of
few-shot prompts (Zhao et al. 2021). Every demonstration of the pool needs a label."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from middleware.errors import InvalidArgument
from middleware.options import parse_options
from retrievers.demos.base import Scored, Selection, SelectionJob, Strategy
from retrievers.demos.registry import register

# The shared search looks this many times deeper than the candidates each label needs.
DEPTH_PER_LABEL = 4


@dataclass(frozen=True)
class BalancedOptions:
    pass


class Balanced(Strategy):
    def select(self, job: SelectionJob) -> Selection:
        missing = job.pool.unlabelled()
        if missing:
            raise InvalidArgument(
                f"strategy 'balanced' needs a label on every demonstration; pool {job.pool.name!r} has "
                f"demonstration(s) without one: {missing}")
        counts = job.pool.labels()
        labels = sorted(counts)
        per = max(1, math.ceil(job.depth / max(1, len(labels))))
        # One deep search serves the common labels; a label it leaves short (a rare one)
        # gets a search of its own, restricted to its demonstrations.
        by_label: dict[str, list[Scored]] = {label: [] for label in labels}
        for cand in job.pool.nearest(job.vector, DEPTH_PER_LABEL * per * len(labels), exclude=job.exclude):
            bucket = by_label[job.pool.label_of(cand.id)]
            if len(bucket) < per:
                bucket.append(cand)
        for label in labels:
            if len(by_label[label]) < min(per, counts[label]):
                by_label[label] = job.pool.nearest(job.vector, per, label=label, exclude=job.exclude)
        # Labels whose best neighbour is closest go first in every round.
        order = sorted((lab for lab in labels if by_label[lab]), key=lambda lab: (-by_label[lab][0].score, lab))
        ranked: list[Scored] = []
        for rank in range(per):
            ranked.extend(by_label[lab][rank] for lab in order if rank < len(by_label[lab]))
        return Selection(tuple(ranked[:job.depth]), job.k, {"labels": len(labels), "label_order": order[:job.k]})


@register("balanced", "nearest neighbours taken label by label (every likely label shown)")
def _factory(options: Mapping[str, Any]) -> Strategy:
    parse_options(BalancedOptions, options, "balanced")
    return Balanced()
