"""The contract every demonstration-selection strategy meets: one abstract method,
``select(job) -> Selection``.

A strategy only ranks: it returns candidate ids of the pool, best first, and how
many of them it wants (``limit``). Fitting them under the token budget, compressing
long ones, ordering them in the prompt and rendering them is the same for every
strategy (:mod:`retrievers.demos.packing` and the service), so every strategy
honours ``max_demonstrations`` and the budget by construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from middleware.errors import InvalidArgument
from middleware.types import Demonstration

if TYPE_CHECKING:
    import numpy as np

# Strategies rank this many times more candidates than they want, so that the packer
# can skip demonstrations too long for what is left of the budget and take the next.
SPARE_FACTOR = 2


@dataclass(frozen=True)
class Scored:
    """A pool demonstration's id and its cosine similarity to the query."""

    id: str
    score: float


class PoolView(Protocol):
    """What strategies read of a pool (:class:`retrievers.demos.pool.Pool` meets it)."""

    name: str

    def ids(self) -> tuple[str, ...]:
        """Every id, sorted."""

    def labels(self) -> dict[str, int]:
        """Demonstrations per label ("" for none)."""

    def unlabelled(self, limit: int = 5) -> list[str]: ...

    def label_of(self, demo_id: str) -> str: ...

    def get(self, ids: Sequence[str]) -> list[Demonstration]: ...

    def nearest(self, vector: "np.ndarray", n: int, label: str | None = None,
                exclude: frozenset[str] = frozenset()) -> list["Scored"]:
        """Up to ``n`` demonstrations by similarity, best first (of ``label`` when given)."""

    def similarities(self, vector: "np.ndarray", ids: Sequence[str]) -> list[float]: ...

    def vectors(self, ids: Sequence[str]) -> "np.ndarray": ...


@dataclass(frozen=True)
class SelectionJob:
    """What a strategy gets: the query and its vector, the pool, how many demonstrations
    to choose (``k``: max_demonstrations less the fixed core) and ids already placed."""

    query: str
    vector: "np.ndarray"
    pool: PoolView
    k: int
    seed: int = 0
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise InvalidArgument(f"k must be an integer >= 0, got {self.k!r}")
        object.__setattr__(self, "exclude", frozenset(self.exclude))

    @property
    def depth(self) -> int:
        """How many ranked candidates to hand the packer."""
        return self.k * SPARE_FACTOR


@dataclass(frozen=True)
class Selection:
    """Candidates best first (more than ``limit`` when the pool has them) and how many
    the strategy wants; ``details`` says why (JSON-like, returned to the caller)."""

    ranked: tuple[Scored, ...]
    limit: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranked", tuple(self.ranked))


class Strategy(ABC):
    """A demonstration-selection strategy, registered in :mod:`retrievers.demos.registry`."""

    @abstractmethod
    def select(self, job: SelectionJob) -> Selection:
        """Rank candidates of ``job.pool`` for ``job.query``; never ids in ``job.exclude``."""
