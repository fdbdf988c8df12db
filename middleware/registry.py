"""A registry of named factories, shared by the method families that live above the
kernel (demonstration strategies today): a name maps to a factory and a one-line
summary; an unknown name is an :class:`~middleware.errors.UnknownName` that lists
the known ones; the modules that register the built-in entries are imported on the
first lookup, so importing a family's package stays light."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

from middleware.errors import UnknownName

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    summary: str


class Registry(Generic[F]):
    """Names -> factories of one kind (``kind`` names it in error messages)."""

    def __init__(self, kind: str, builtin_modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self._builtin = tuple(builtin_modules)
        self._entries: dict[str, Entry[F]] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, summary: str) -> Callable[[F], F]:
        """Decorator: ``@strategies.register("similar", "nearest neighbours")``."""
        def decorate(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, summary)
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Remove an entry (plugins and tests that register their own)."""
        self._entries.pop(name, None)

    def entries(self) -> dict[str, Entry[F]]:
        self._load()
        return dict(self._entries)

    def get(self, name: str) -> Entry[F]:
        self._load()
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownName(self.kind, name, self._entries)
        return entry

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                for module in self._builtin:
                    importlib.import_module(module)
                self._loaded = True
