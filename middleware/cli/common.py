"""Helpers shared by the ``ragpress`` commands: settings, input files, remote errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from middleware.errors import InvalidArgument, Unavailable


def settings(args: argparse.Namespace, **overrides):
    import os

    from middleware.settings import Settings

    return Settings.load(getattr(args, "config", None), os.environ, **overrides)


def read_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc


def single_line(args: argparse.Namespace) -> dict:
    docs = [{"id": str(i), "text": text} for i, text in enumerate(args.doc or [])]
    if args.docs_json:
        try:
            loaded = json.loads(Path(args.docs_json).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidArgument(f"cannot read documents from {args.docs_json}: {exc}") from exc
        if not isinstance(loaded, list):
            raise InvalidArgument(f"{args.docs_json} must hold a JSON list of documents")
        docs.extend(loaded)
    return {"id": "cli", "query": args.query, "documents": docs}


def remote_error(exc) -> Exception:
    """A gRPC error as the CLI reports it: bad input stays bad input, the rest is unavailability."""
    import grpc

    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(exc.details())
    return Unavailable(f"{exc.code().name}: {exc.details()}")
