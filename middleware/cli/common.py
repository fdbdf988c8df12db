"""Helpers shared by the ``ragpress`` commands: settings, shared flags, help, input files,
remote errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from middleware.errors import InvalidArgument, Unavailable


def settings(args: argparse.Namespace, **overrides):
    """Settings as the service reads them (defaults < --config < RAGPRESS_*), then the flags."""
    import os

    from middleware.settings import Settings

    if getattr(args, "unknown_model", None):
        overrides.setdefault("unknown_model", args.unknown_model)
    return Settings.load(getattr(args, "config", None), os.environ, **overrides)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (when it has one) and expands ``{methods}`` to the
    registered compression methods, only when help is printed (so that parsing a
    command line never imports the methods)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "{methods}" in text:
            from compressors import registry

            text = text.replace("{methods}", ", ".join(sorted(registry.methods())))
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_request_flags(parser: argparse.ArgumentParser, model: str) -> None:
    """The flags that describe one request: query, documents, budget, model, method."""
    parser.add_argument("--query", help="the question the context must answer")
    parser.add_argument("--doc", action="append", metavar="TEXT", help="a document's text (repeatable)")
    parser.add_argument("--docs-json", metavar="FILE", help="file with a JSON list of {id, title, text, metadata}")
    parser.add_argument("--target-tokens", type=int, metavar="N",
                        help="token ceiling of the context, in the target model's tokenizer")
    parser.add_argument("--keep-ratio", type=float, metavar="R", help="share of the original tokens to keep, in (0, 1]")
    parser.add_argument("--model", default=model, help="target model whose tokenizer counts the budget")
    parser.add_argument("--method", default="extractive", help="compression method: one of {methods}")
    parser.add_argument("--unknown-model", choices=("error", "fallback"),
                        help="for a model with no known tokenizer: fail, or count with cl100k_base "
                             "(default: the unknown_model setting, 'error')")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (in-process mode)")


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
