"""``ragpress compress``: one request from flags, or a JSONL batch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from middleware.cli import common
from middleware.errors import InvalidArgument, RagpressError

# A batch longer than this shows a progress bar (on a terminal).
PROGRESS_MIN_LINES = 20


def _compress_fn(args: argparse.Namespace) -> Callable:
    """In-process engine, or the gRPC client when --server is given."""
    if not args.server:
        from middleware.library import Ragpress

        engine = Ragpress(common.settings(args))
        # Load the models and the flag's tokenizer before the first request, so that its
        # latency_ms is compression only. A bad model name is reported by the lines that use it.
        engine.warm_up()
        try:
            engine.models.tokenizers.get(args.model)
        except RagpressError:
            pass
        return engine.pipeline.compress
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
    options = _options(args.option or [])
    if args.input:
        if options:
            raise InvalidArgument("--option applies to one request; in a batch, give a line a pipeline of "
                                  '{"method", "options"} stages')
        lines = common.read_lines(args.input)
    else:
        if args.query is None:
            raise InvalidArgument("give --input FILE.jsonl, or --query with --doc/--docs-json")
        line = common.single_line(args)
        if options:
            line["pipeline"] = [{"method": args.method, "options": options}]
        lines = [json.dumps(line)]
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
    return 0 if summary.errors == 0 and summary.over_budget == 0 else 1


def _options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` flags as the method's options; a value is read as JSON when it parses
    (numbers, booleans, lists), else kept as text."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--option takes KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def add_commands(sub: "argparse._SubParsersAction") -> None:
    comp = sub.add_parser(
        "compress", help="compress one request (flags) or a JSONL batch (--input)",
        description="Compress one request given by flags, or a JSONL batch (--input). Exit status: 0 when "
                    "every line was compressed within its budget, 1 when a line failed (its output record "
                    "says why) or went over budget, 2 on a usage error.")
    comp.add_argument("--input", metavar="FILE", help="batch JSONL file, one request a line ('-' for stdin)")
    comp.add_argument("--output", metavar="FILE", help="output JSONL file (default: stdout)")
    common.add_request_flags(comp, model="gpt-4o")
    comp.add_argument("--option", action="append", metavar="KEY=VALUE",
                      help="an option of the method (repeatable; JSON values), e.g. --option heads=fast")
    comp.add_argument("--server", metavar="HOST:PORT", help="send to this gRPC address instead of running in-process")
    comp.add_argument("--timeout", type=float, default=60.0, help="seconds per request with --server")
    comp.set_defaults(func=cmd_compress)
