"""``ragpress``: serve, health, compress (one request from flags, or a JSONL batch), generate,
index and retrieve (collections)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from middleware.errors import InvalidArgument, RagpressError, Unavailable
from middleware.offline import configure_offline

# A batch longer than this shows a progress bar (on a terminal).
PROGRESS_MIN_LINES = 20


def _settings(args: argparse.Namespace, **overrides):
    import os

    from middleware.settings import Settings

    return Settings.load(getattr(args, "config", None), os.environ, **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from middleware.server import serve

    settings = _settings(args, host=args.host, port=args.port)
    asyncio.run(serve(settings))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    import grpc

    from middleware.client import RagpressClient

    with RagpressClient(args.server, timeout=args.timeout) as client:
        try:
            status = client.health(args.service)
        except grpc.RpcError as exc:
            print(f"UNREACHABLE: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 2
    print(status)
    return 0 if status == "SERVING" else 1


def _compress_fn(args: argparse.Namespace) -> Callable:
    """In-process engine, or the gRPC client when --server is given."""
    if not args.server:
        from middleware.library import Ragpress

        settings = _settings(args)
        return Ragpress(settings).pipeline.compress
    import grpc

    from middleware import convert
    from middleware.client import RagpressClient

    client = RagpressClient(args.server, timeout=args.timeout)

    def remote(request):
        try:
            reply = client.stub.Compress(convert.compress_request_to_pb(request), timeout=client.timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details()) from exc
            raise Unavailable(f"{exc.code().name}: {exc.details()}") from exc
        return convert.compress_result_from_pb(reply)

    return remote


def cmd_compress(args: argparse.Namespace) -> int:
    from middleware import batch

    defaults = batch.BatchDefaults(model=args.model, method=args.method,
                                   target_tokens=args.target_tokens, keep_ratio=args.keep_ratio)
    if args.input:
        lines = _read_lines(args.input)
    else:
        if args.query is None:
            raise InvalidArgument("give --input FILE.jsonl, or --query with --doc/--docs-json")
        lines = [json.dumps(_single_line(args))]
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


def cmd_usage(args: argparse.Namespace) -> int:
    """Usage from the ledger (local, by settings) or from a server (GetUsage)."""
    from middleware.accounting import report

    start, end = report.parse_when(args.since), report.parse_when(args.until)
    keys = tuple(k for k in args.group_by.split(",") if k)
    fetch, close = _usage_fetch(args)
    try:
        return _usage_report(args, fetch, start, end, keys)
    finally:
        close()


def _usage_report(args: argparse.Namespace, fetch: Callable, start: float | None, end: float | None,
                  keys: tuple[str, ...]) -> int:
    from dataclasses import asdict

    from middleware.accounting import report
    from middleware.accounting.records import UsageQuery

    rows = fetch(UsageQuery(start=start or 0.0, end=end if end is not None else float("inf"), group_by=keys))
    if args.json:
        print(json.dumps([dict(asdict(r), saved_usd=r.saved_usd, net_saved_usd=r.net_saved_usd) for r in rows],
                         indent=2))
    else:
        print(report.table(rows, keys))
    if args.chart:
        daily = rows if keys == ("day",) else fetch(UsageQuery(start=start or 0.0, end=end if end is not None
                                                                else float("inf"), group_by=("day",)))
        try:
            Path(args.chart).write_text(report.chart_html(daily), encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(f"cannot write {args.chart}: {exc.strerror}") from exc
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


def _usage_fetch(args: argparse.Namespace) -> tuple[Callable, Callable[[], None]]:
    """(fetch rows for a UsageQuery, release the ledger or channel)."""
    if not args.server:
        from middleware.accounting import open_ledger

        from middleware.accounting.sqlite import sqlite_path

        settings = _settings(args, ledger_url=args.ledger_url)
        if not settings.ledger_url or settings.ledger_url.startswith("sqlite:"):
            path = sqlite_path(settings.ledger_url, settings)
            if not path.exists():
                raise InvalidArgument(f"no usage ledger at {path}; has the service run with this data_dir? "
                                      f"(or give --ledger-url / --server)")
        ledger = open_ledger(settings)
        return ledger.query, ledger.close
    import grpc

    from middleware import convert
    from middleware.client import RagpressClient

    client = RagpressClient(args.server, timeout=args.timeout)

    def remote(query):
        msg = convert.usage_request_to_pb(query.start, query.end, query.group_by)
        try:
            return convert.usage_rows_from_pb(client.stub.GetUsage(msg, timeout=client.timeout))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(exc.details()) from exc
            raise Unavailable(f"{exc.code().name}: {exc.details()}") from exc

    return remote, client.close


def cmd_generate(args: argparse.Namespace) -> int:
    """Compress, prompt and call the model in-process; the answer goes to stdout."""
    import asyncio

    from middleware.library import Ragpress, as_budget, as_document
    from middleware.llm.generate import GenerateRequest, GenerationOptions, GenerateResult
    from middleware.types import CompressRequest, Stage

    if (args.target_tokens is None) == (args.keep_ratio is None):
        raise InvalidArgument("give exactly one of --target-tokens or --keep-ratio")
    engine = Ragpress(_settings(args))
    line = _single_line(args)
    request = GenerateRequest(
        compress=CompressRequest(query=args.query or "", budget=as_budget(args.target_tokens or args.keep_ratio),
                                 documents=tuple(as_document(d, i) for i, d in enumerate(line["documents"])),
                                 model=args.model, pipeline=(Stage(args.method),)),
        system_prompt=args.system or "", options=GenerationOptions(max_tokens=args.max_tokens),
        fallback=args.fallback)

    async def run() -> GenerateResult:
        prepared = await asyncio.to_thread(engine.generator.prepare, request, "cli")
        final = None
        async for item in engine.generator.run(prepared, tenant="cli", timeout=args.timeout, stream=True):
            if isinstance(item, str):
                if not args.json:
                    print(item, end="", flush=True)
            else:
                final = item
        return final

    result = asyncio.run(run())
    if args.json:
        from dataclasses import asdict

        print(json.dumps({
            "text": result.text, "model": result.model, "fell_back": result.fell_back,
            "fallback_reason": result.fallback_reason, "usage": asdict(result.usage),
            "cost": dict(asdict(result.cost), saved_usd=result.cost.saved_usd),
            "compressed_tokens": result.compression.compressed_tokens,
            "original_tokens": result.compression.original_tokens}))
    else:
        print()
        print(f"[{result.model}{' (fallback: ' + result.fallback_reason + ')' if result.fell_back else ''}; "
              f"prompt {result.usage.prompt_tokens} tokens (uncompressed {result.usage.original_prompt_tokens}, "
              f"cached {result.usage.cached_prompt_tokens}); completion {result.usage.completion_tokens}; "
              f"${result.cost.cost_usd:.6f}]", file=sys.stderr)
    return 0


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc


def _single_line(args: argparse.Namespace) -> dict:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragpress", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 50051; 0 picks a free one)")
    serve.add_argument("--config", default=None, help="TOML settings file")
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser("health", help="ask a running service for its health")
    health.add_argument("--server", default="127.0.0.1:50051")
    health.add_argument("--service", default="", help="service name ('' for the whole server)")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(func=cmd_health)

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

    usage = sub.add_parser("usage", help="tokens and dollars saved, from the usage ledger")
    usage.add_argument("--since", default="30d", help="start: 7d, 12h, 30m, an ISO date/time, or epoch seconds")
    usage.add_argument("--until", default=None, help="end (default now), same forms as --since")
    usage.add_argument("--group-by", default="day", help="comma list of tenant, model, method, day ('' = total)")
    usage.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    usage.add_argument("--chart", default=None, help="also write an HTML chart of savings per day to this file")
    usage.add_argument("--server", default=None, help="ask this gRPC address (GetUsage) instead of the local ledger")
    usage.add_argument("--ledger-url", default=None, help="local ledger (default: settings' ledger_url)")
    usage.add_argument("--config", default=None, help="TOML settings file (local ledger)")
    usage.add_argument("--timeout", type=float, default=30.0)
    usage.set_defaults(func=cmd_usage)

    gen = sub.add_parser("generate", help="compress, prompt and call a model (in-process); prints the answer")
    gen.add_argument("--query", required=True)
    gen.add_argument("--doc", action="append", help="a document's text (repeatable)")
    gen.add_argument("--docs-json", help="file with a JSON list of {id, title, text, metadata}")
    gen.add_argument("--target-tokens", type=int, default=None)
    gen.add_argument("--keep-ratio", type=float, default=None)
    gen.add_argument("--model", default="local/smollm2", help="litellm model name or local/<name>")
    gen.add_argument("--method", default="extractive")
    gen.add_argument("--system", default=None, help="system prompt")
    gen.add_argument("--max-tokens", type=int, default=None)
    gen.add_argument("--fallback", choices=("fail", "retry", "local"), default=None)
    gen.add_argument("--timeout", type=float, default=None, help="seconds for the whole call")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    gen.add_argument("--config", default=None, help="TOML settings file")
    gen.set_defaults(func=cmd_generate)

    from retrievers.cli import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_offline()
    try:
        return args.func(args)
    except RagpressError as exc:
        print(f"ragpress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
