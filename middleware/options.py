"""Checked inputs shared by the floors above: typed options from JSON-like mappings
(one parser for every registered method, compressors and demonstration strategies
alike, so an unknown key or a value of the wrong type reads the same everywhere) and
the fields of format-string templates."""

from __future__ import annotations

import dataclasses
import string
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

from middleware.errors import InvalidArgument

O = TypeVar("O")


def parse_options(cls: type[O], options: Mapping[str, Any], method: str) -> O:
    """Build the frozen options dataclass ``cls`` from a JSON-like mapping.

    Unknown keys and values of the wrong type are :class:`InvalidArgument` errors that
    name the method, the key and what is expected.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidArgument(f"method {method!r}: unknown option(s) {unknown}; known: {sorted(known)}")
    values = {key: _check(method, key, hints[key], value) for key, value in options.items()}
    try:
        return cls(**values)
    except InvalidArgument:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"method {method!r}: {exc}") from exc


def _check(method: str, key: str, hint: Any, value: Any) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return None
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)  # JSON/Struct numbers arrive as floats
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)) \
                and all(isinstance(v, str) for v in value):
            return tuple(value)  # lists of strings (JSON arrays, Struct list values)
    names = " or ".join("null" if k is type(None) else "a list of strings" if typing.get_origin(k) is tuple
                        else k.__name__ for k in allowed)
    raise InvalidArgument(f"method {method!r}: option {key!r} must be {names}, got {value!r}")


def format_fields(template: str, allowed: Sequence[str], what: str) -> set[str]:
    """The fields of the format string ``template`` (a prompt or demonstration template);
    a malformed string or a field outside ``allowed`` is InvalidArgument naming ``what``."""
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not a valid format string: {exc}") from exc
    # A format spec or conversion ("{context:>99999999}", "{context!r}") would let a short
    # template pad, repr or reject the text: fields are plain substitutions only.
    fancy = next((f for f, spec, conv in parsed if spec or conv), None)
    if fancy is not None:
        raise InvalidArgument(f"{what} field {{{fancy}}} has a format spec or conversion; "
                              f"write plain fields like {{{fancy}}}")
    names = {f for f, _, _ in parsed}
    unknown = sorted(names - set(allowed))
    if unknown:
        raise InvalidArgument(f"{what} has unknown field(s) {unknown}; allowed: {list(allowed)}")
    return names
