"""From ranked candidates to the demonstrations block of a prompt, exactly within
the token budget.

Invariants:
- the returned ``text`` is ``render(demonstrations, template)`` and ``tokens`` is its
  exact count in the target model's tokenizer; ``tokens <= budget`` always (counts
  of concatenated strings are not additive under BPE, so the whole block is counted
  again after ordering and the lowest-ranked demonstration dropped until it fits);
- the core demonstrations come first, in canonical order (by id), uncompressed, so
  every request that names the same core shares the same leading tokens;
- at most ``limit`` demonstrations beyond the core; candidates too long for what is
  left of the budget are skipped, not truncated (a shorter one further down is taken).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from middleware.errors import InvalidArgument
from middleware.options import format_fields
from middleware.tokens import ModelTokenizer
from middleware.types import Demonstration

DEFAULT_TEMPLATE = "Question: {input}\nAnswer: {output}\n\n"
TEMPLATE_FIELDS = ("id", "input", "output", "label")
ORDERS = ("nearest_last", "nearest_first", "ranked")


def check_template(template: str) -> str:
    """``template`` (or the default when empty) if it is a format string over :data:`TEMPLATE_FIELDS`."""
    template = template or DEFAULT_TEMPLATE
    names = format_fields(template, TEMPLATE_FIELDS, "demonstration template")
    if "input" not in names:
        raise InvalidArgument("demonstration template must contain {input}")
    return template


def render(demonstrations: Sequence[Demonstration], template: str = DEFAULT_TEMPLATE) -> str:
    """The demonstrations in the given order, each through ``template``."""
    return "".join(template.format(id=d.id, input=d.input, output=d.output, label=d.label) for d in demonstrations)


@dataclass(frozen=True)
class Candidate:
    demonstration: Demonstration
    score: float


@dataclass(frozen=True)
class Packed:
    """The chosen demonstrations in prompt order (core first) and their block."""

    demonstrations: tuple[Demonstration, ...]
    scores: tuple[float, ...]
    text: str
    tokens: int
    core_count: int
    stable_prefix_tokens: int
    skipped_for_budget: int
    compressed_ids: tuple[str, ...]


Shrink = Callable[[Demonstration], Demonstration]


def pack(core: Sequence[Candidate], ranked: Sequence[Candidate], limit: int, budget: int | None,
         tokenizer: ModelTokenizer, template: str = DEFAULT_TEMPLATE, order: str = "nearest_last",
         shrink: Shrink | None = None) -> Packed:
    """Fit ``core`` plus up to ``limit`` of ``ranked`` (best first) under ``budget`` tokens (None: no ceiling).

    ``shrink`` (the service's compressor for long demonstrations) is applied to each
    ranked candidate before it is counted; a shrunk demonstration keeps its id.
    """
    if order not in ORDERS:
        raise InvalidArgument(f"unknown demonstration order {order!r}; known: {list(ORDERS)}")
    core = sorted(core, key=lambda c: c.demonstration.id)
    core_text = render([c.demonstration for c in core], template)
    used = tokenizer.count(core_text)
    if budget is not None and used > budget:
        raise InvalidArgument(f"the core demonstrations alone take {used} tokens, over the budget of {budget}")
    taken: list[tuple[int, Candidate]] = []
    compressed: list[str] = []
    skipped = 0
    for rank, cand in enumerate(ranked):
        if len(taken) >= limit:
            break
        demo = shrink(cand.demonstration) if shrink is not None else cand.demonstration
        cost = tokenizer.count(render([demo], template))
        if budget is not None and used + cost > budget:
            skipped += 1
            continue
        used += cost
        if demo is not cand.demonstration:
            compressed.append(demo.id)
        taken.append((rank, Candidate(demo, cand.score)))
    while True:
        chosen = core + _ordered(taken, order)
        text = render([c.demonstration for c in chosen], template)
        tokens = tokenizer.count(text)
        if budget is None or tokens <= budget or not taken:
            break
        # Over by a boundary merge: drop the lowest-ranked demonstration and count again.
        taken.remove(max(taken, key=lambda item: item[0]))
        skipped += 1
    kept = {c.demonstration.id for _, c in taken}
    return Packed(
        demonstrations=tuple(c.demonstration for c in chosen),
        scores=tuple(c.score for c in chosen),
        text=text,
        tokens=tokens,
        core_count=len(core),
        stable_prefix_tokens=_common_prefix(tokenizer.encode(core_text), tokenizer.encode(text)) if core else 0,
        skipped_for_budget=skipped,
        compressed_ids=tuple(i for i in compressed if i in kept),
    )


def _ordered(taken: list[tuple[int, Candidate]], order: str) -> list[Candidate]:
    if order == "ranked":
        items = sorted(taken, key=lambda item: item[0])
    elif order == "nearest_first":
        items = sorted(taken, key=lambda item: (-item[1].score, item[0]))
    else:  # nearest last: the closest demonstration sits right before the input
        items = sorted(taken, key=lambda item: (item[1].score, -item[0]))
    return [c for _, c in items]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
