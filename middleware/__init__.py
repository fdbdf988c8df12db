"""ragpress middleware: the request pipeline, gRPC service, client and CLI.

The public surface is small and imported lazily so that ``import middleware``
stays fast and never imports torch::

    from middleware import compress, Document, Budget
    result = compress("who?", [Document(id="a", text="...")], Budget(max_tokens=300))
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Budget": "middleware.types",
    "CompressRequest": "middleware.types",
    "CompressResult": "middleware.types",
    "ContextFormat": "middleware.types",
    "Document": "middleware.types",
    "Stage": "middleware.types",
    "Settings": "middleware.settings",
    "Ragpress": "middleware.library",
    "compress": "middleware.library",
    "RagpressClient": "middleware.client",
    "AsyncRagpressClient": "middleware.client",
    "errors": "middleware.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'middleware' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    return mod if name == "errors" else getattr(mod, name)
