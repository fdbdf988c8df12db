"""``random``: a seeded random sample of the pool, the baseline every other strategy
must beat. The seed is mixed with the query, so each input gets its own draw and the
same (seed, input) always gets the same one."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Mapping

from middleware.options import parse_options
from retrievers.demos.base import Scored, Selection, SelectionJob, Strategy
from retrievers.demos.registry import register


@dataclass(frozen=True)
class RandomOptions:
    pass


class RandomPick(Strategy):
    def select(self, job: SelectionJob) -> Selection:
        ids = [i for i in job.pool.ids() if i not in job.exclude]
        digest = hashlib.blake2b(f"{job.seed}\x00{job.query}".encode(), digest_size=8).digest()
        drawn = random.Random(int.from_bytes(digest, "little")).sample(ids, min(len(ids), job.depth))
        scores = job.pool.similarities(job.vector, drawn)
        return Selection(tuple(Scored(i, s) for i, s in zip(drawn, scores)), job.k, {"seed": job.seed})


@register("random", "a seeded random sample of the pool (the baseline)")
def _factory(options: Mapping[str, Any]) -> Strategy:
    parse_options(RandomOptions, options, "random")
    return RandomPick()
