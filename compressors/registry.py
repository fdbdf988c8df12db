"""Registry of compression methods: a name maps to a factory.

A factory takes the stage's options (a JSON-like mapping) and the model registry,
and returns a :class:`~compressors.base.Compressor`. An unknown name is an
:class:`~middleware.errors.UnknownName` error that lists the known ones.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from middleware.errors import UnknownName

if TYPE_CHECKING:
    from compressors.base import Compressor
    from middleware.models import ModelRegistry

Factory = Callable[[Mapping[str, Any], "ModelRegistry"], "Compressor"]


@dataclass(frozen=True)
class Method:
    name: str
    factory: Factory
    summary: str
    # What the method keeps or drops whole: "sentence" (units.split units) or "word" (words.spans units).
    unit: str = "sentence"
    # "text": a compressor over text (the Compressor contract); "soft-tokens": vectors for a
    # local model's input embeddings, usable only as the last stage of Generate (compressors.soft).
    output: str = "text"


_METHODS: dict[str, Method] = {}
# Modules that register methods when imported; imported on first lookup so that
# `import compressors` stays light.
_BUILTIN_MODULES = ("compressors.extractive", "compressors.baselines", "compressors.tokens", "compressors.tokens_lite",
                    "compressors.abstractive", "compressors.soft")
_loaded = False


def register(name: str, summary: str, unit: str = "sentence", *, output: str = "text") -> Callable[[Factory], Factory]:
    def decorate(factory: Factory) -> Factory:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        _METHODS[name] = Method(name, factory, summary, unit, output)
        return factory

    return decorate


def unregister(name: str) -> None:
    """Remove a method (plugins and tests that register their own)."""
    _METHODS.pop(name, None)


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def methods() -> dict[str, Method]:
    _load_builtins()
    return dict(_METHODS)


def text_methods() -> dict[str, Method]:
    """The methods that compress text (every one but the soft-token kind)."""
    return {name: m for name, m in methods().items() if m.output == "text"}


def get(name: str) -> Method:
    _load_builtins()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownName("method", name, _METHODS) from None


def create(name: str, options: Mapping[str, Any], models: "ModelRegistry") -> "Compressor":
    return get(name).factory(options, models)
