"""Compression methods behind one contract (:class:`compressors.base.Compressor`).

Importing this package is light: methods and their models load on first use.
"""

from compressors.registry import create, get, methods, register

__all__ = ["create", "get", "methods", "register"]
