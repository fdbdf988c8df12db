"""Registry of demonstration-selection strategies: a name maps to a factory that
takes the request's options (a JSON-like mapping) and returns a
:class:`~retrievers.demos.base.Strategy`. An unknown name lists the known ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from middleware.registry import Entry, Registry

if TYPE_CHECKING:
    from retrievers.demos.base import Strategy

Factory = Callable[[Mapping[str, Any]], "Strategy"]

STRATEGIES: Registry[Factory] = Registry("demonstration strategy", (
    "retrievers.demos.random_pick", "retrievers.demos.similar", "retrievers.demos.mmr",
    "retrievers.demos.balanced", "retrievers.demos.dynamic"))
register = STRATEGIES.register
unregister = STRATEGIES.unregister


def strategies() -> dict[str, Entry[Factory]]:
    return STRATEGIES.entries()


def create(name: str, options: Mapping[str, Any]) -> "Strategy":
    """The strategy ``name`` built with ``options`` (unknown names and options are InvalidArgument)."""
    return STRATEGIES.get(name).factory(options)
