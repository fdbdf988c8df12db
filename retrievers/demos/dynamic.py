"""``dynamic``: as many demonstrations as the input needs. Its nearest neighbours vote
(weighted by similarity) on the label (or, without labels, on the output); when the
majority's share reaches ``agreement`` the input is easy and ``min_demonstrations``
of the nearest suffice, otherwise it gets all ``k``. With ``consensus`` (the default)
an easy input's demonstrations are the nearest ones *of the majority label*: the
neighbours that disagree are the ones a small scoring model is pulled off the
agreed answer by, so they go first. The result says why.

DynaICL (Zhou et al. 2023) learns the number per input and saved up to 46% of
demonstration tokens; neighbour agreement is a training-free proxy for the same
"how hard is this input" signal (kNN confidence). The defaults (``agreement`` 0.5,
``min_demonstrations`` 2, ``consensus``) were chosen with SmolLM2 on 150 held-out items
of each training pool, never on evaluation data (``bench/demonstrations.py
--tune-dynamic-llm 150``): the largest token saving at most 1 point below fixed k in
every pool. With two labels a share of 0.5 is always reached, so every input is easy:
raise ``agreement`` to give hard inputs all k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from middleware.errors import InvalidArgument
from middleware.options import parse_options
from retrievers.demos.base import Selection, SelectionJob, Strategy
from retrievers.demos.registry import register


@dataclass(frozen=True)
class DynamicOptions:
    # Share of the neighbours' (similarity-weighted) vote the majority needs for "easy".
    agreement: float = 0.5
    # Demonstrations an easy input gets (the nearest ones). One alone cost 2-7 points on
    # the pools; two of the agreed label cost none.
    min_demonstrations: int = 2
    # Neighbours that vote (0: k).
    neighbours: int = 0
    # An easy input gets the nearest demonstrations of the majority label only.
    consensus: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.agreement <= 1.0:
            raise InvalidArgument(f"method 'dynamic': option 'agreement' must be in (0, 1], got {self.agreement}")
        if self.min_demonstrations < 0 or self.neighbours < 0:
            raise InvalidArgument("method 'dynamic': options 'min_demonstrations' and 'neighbours' must be >= 0")


def vote(labels: list[str], weights: list[float]) -> tuple[str, float]:
    """The majority label and its share of the total weight (weights below 0 count as 0)."""
    totals: dict[str, float] = {}
    for label, w in zip(labels, weights):
        totals[label] = totals.get(label, 0.0) + max(0.0, w)
    if not totals:
        return "", 0.0
    best = min(totals, key=lambda lab: (-totals[lab], lab))
    whole = sum(totals.values())
    return best, (totals[best] / whole if whole > 0 else 1.0 / len(totals))


class Dynamic(Strategy):
    def __init__(self, options: DynamicOptions) -> None:
        self.options = options

    def select(self, job: SelectionJob) -> Selection:
        voters = self.options.neighbours or job.k
        ranked = job.pool.nearest(job.vector, max(job.depth, voters), exclude=job.exclude)
        top = ranked[:voters]
        if not top:
            return Selection((), job.k, {"reason": "the pool has no candidates"})
        demos = job.pool.get([c.id for c in top])
        labels = [d.label or d.output for d in demos]
        majority, share = vote(labels, [c.score for c in top])
        easy = share >= self.options.agreement and len(top) > 1
        limit = min(job.k, self.options.min_demonstrations) if easy else job.k
        candidates = ranked[:job.depth]
        if easy and self.options.consensus:
            # Candidates beyond the voters are labelled too: keep the spares the packer may need.
            kinds = {c.id: lab for c, lab in zip(top, labels)}
            rest = [c for c in candidates if c.id not in kinds]
            kinds.update((d.id, d.label or d.output) for d in job.pool.get([c.id for c in rest]))
            candidates = [c for c in candidates if kinds[c.id] == majority]
        reason = (f"{len(top)} nearest neighbours agree on {majority!r} (share {share:.2f} >= "
                  f"{self.options.agreement}): {limit} demonstration(s)"
                  f"{' of ' + repr(majority) if self.options.consensus else ''}" if easy else
                  f"{len(top)} nearest neighbours disagree (majority {majority!r}, share {share:.2f} < "
                  f"{self.options.agreement}): all {limit}")
        return Selection(tuple(candidates), limit,
                         {"agreement": round(share, 4), "majority": majority, "voters": len(top), "easy": easy,
                          "wanted": limit, "reason": reason})


@register("dynamic", "as many demonstrations as the input needs: fewer when its neighbours agree")
def _factory(options: Mapping[str, Any]) -> Strategy:
    return Dynamic(parse_options(DynamicOptions, options, "dynamic"))
