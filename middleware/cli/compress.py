"""``ragpress compress``: one request from flags, or a JSONL batch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from middleware.cli import common
from middleware.errors import InvalidArgument

# A batch longer than this shows a progress bar (on a terminal).
PROGRESS_MIN_LINES = 20


def _compress_fn(args: argparse.Namespace) -> Callable:
    """In-process engine, or the gRPC client when --server is given."""
    if not args.server:
        from middleware.library import Ragpress

        settings = common.settings(args)
        return Ragpress(settings).pipeline.compress
    import grpc

    from middleware import convert
    from middleware.client import RagpressClient

    client = RagpressClient(args.server, timeout=args.timeout)

    def remote(request):
        try:
            reply = client.stub.Compress(convert.compress_request_to_pb(request), timeout=client.timeout)
        except grpc.RpcError as exc:
            raise common.remote_error(exc) from exc
        return convert.compress_result_from_pb(reply)

    return remote


def cmd_compress(args: argparse.Namespace) -> int:
    from middleware import batch

    defaults = batch.BatchDefaults(model=args.model, method=args.method,
                                   target_tokens=args.target_tokens, keep_ratio=args.keep_ratio)
    if args.input:
        lines = common.read_lines(args.input)
    else:
        if args.query is None:
            raise InvalidArgument("give --input FILE.jsonl, or --query with --doc/--docs-json")
        lines = [json.dumps(common.single_line(args))]
    compress = _compress_fn(args)
    out = open(args.output, "w", encoding="utf-8") if args.output and args.output != "-" else sys.stdout
    summary = batch.Summary()
    records = batch.run(lines, defaults, compress)
    if args.input:
        from tqdm import tqdm

        total = sum(1 for line in lines if line.strip())
        records = tqdm(records, total=total, unit="q", file=sys.stderr, disable=None if total > PROGRESS_MIN_LINES else True)
    try:
        for record in records:
            summary.add(record)
            out.write(json.dumps(record, ensure_ascii=False, indent=None if args.input else 2) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.input:
        print(summary.line(), file=sys.stderr)
    elif summary.errors:
        return 1
    return 0 if summary.over_budget == 0 else 1


def add_commands(sub: "argparse._SubParsersAction") -> None:
    comp = sub.add_parser("compress", help="compress one request (flags) or a JSONL batch (--input)")
    comp.add_argument("--input", help="batch JSONL file ('-' for stdin)")
    comp.add_argument("--output", help="output JSONL file (default stdout)")
    comp.add_argument("--query")
    comp.add_argument("--doc", action="append", help="a document's text (repeatable)")
    comp.add_argument("--docs-json", help="file with a JSON list of {id, title, text, metadata}")
    comp.add_argument("--target-tokens", type=int, default=None)
    comp.add_argument("--keep-ratio", type=float, default=None)
    comp.add_argument("--model", default="gpt-4o")
    comp.add_argument("--method", default="extractive")
    comp.add_argument("--server", default=None, help="send to this gRPC address instead of running in-process")
    comp.add_argument("--timeout", type=float, default=60.0)
    comp.add_argument("--config", default=None, help="TOML settings file (in-process mode)")
    comp.set_defaults(func=cmd_compress)
