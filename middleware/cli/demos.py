"""``ragpress demos``: demonstration pools and selection from the command line,
in-process (pools under data_dir) or against a server (``--server``).

    ragpress demos index trec --file trec_pool.jsonl          # {"id", "input", "output", "label", "metadata"} a line
    ragpress demos select --pool trec --input "Who wrote Hamlet?" --method mmr -k 4 --budget 120
    ragpress demos select --pool trec --batch inputs.jsonl --output picked.jsonl   # {"id", "input"} a line
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from middleware.cli import common
from middleware.errors import InvalidArgument, RagpressError


def _jsonl(path: str, what: str) -> list[dict[str, Any]]:
    """Objects of a JSONL file (or a JSON list); '-' reads stdin."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} from {path}: {exc.strerror}") from exc
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{path}: not JSONL nor a JSON list: {exc}") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument(f"{path} must hold JSON objects, one a line")
    return rows


def _options(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--option expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_index(args: argparse.Namespace) -> int:
    demos = _jsonl(args.file, "demonstrations") if args.file else []
    deletes = tuple(args.delete or ())
    if args.server:
        from middleware.client import RagpressClient

        with RagpressClient(args.server, tenant=args.tenant, timeout=args.timeout) as client:
            result = client.index_demonstrations(args.pool, demos, deletes)
    else:
        result = _engine(args).index_demonstrations(args.pool, demos, deletes, tenant=args.tenant or "default")
    print(json.dumps({"pool": args.pool, "upserted": result.upserted, "deleted": result.deleted,
                      "size": result.size}))
    return 0


def _select_options(args: argparse.Namespace) -> dict[str, Any]:
    if bool(args.pool) == bool(args.pool_file):
        raise InvalidArgument("give exactly one of --pool (a stored pool) or --pool-file (inline JSONL)")
    budget = None
    if args.budget is not None:
        budget = int(args.budget) if float(args.budget).is_integer() and args.budget >= 1 else args.budget
    return {"pool_name": args.pool or "", "budget": budget, "model": args.model, "max_demonstrations": args.k,
            "method": args.method, "options": _options(args.option), "seed": args.seed,
            "core_ids": tuple(args.core or ()), "order": args.order, "compression": args.compress,
            "compress_above_tokens": args.compress_above or 0, "template": args.template or ""}


def _row(result, row_id: Any) -> dict[str, Any]:
    return {"id": row_id, "method": result.method, "demonstrations": [
        {"id": d.id, "input": d.input, "output": d.output, "label": d.label, "score": round(s, 6)}
        for d, s in zip(result.demonstrations, result.scores)],
        "prompt": result.prompt, "original_tokens": result.original_tokens,
        "selected_tokens": result.selected_tokens, "budget_tokens": result.budget_tokens,
        "stable_prefix_tokens": result.stable_prefix_tokens, "compressed_ids": list(result.compressed_ids),
        "details": dict(result.details), "latency_ms": round(result.latency_ms, 3)}


def cmd_select(args: argparse.Namespace) -> int:
    if bool(args.input) == bool(args.batch):
        raise InvalidArgument("give exactly one of --input (one selection) or --batch (a JSONL of inputs)")
    options = _select_options(args)
    pool = _jsonl(args.pool_file, "the pool") if args.pool_file else []
    rows = [{"id": "cli", "input": args.input}] if args.input else _jsonl(args.batch, "inputs")
    caught: tuple[type[BaseException], ...] = (RagpressError,)
    if args.server:
        import grpc

        from middleware.client import RagpressClient

        caught = (RagpressError, grpc.RpcError)
        client = RagpressClient(args.server, tenant=args.tenant, timeout=args.timeout)
        select = lambda text: client.select_demonstrations(text, pool, **options)
    else:
        engine = _engine(args)
        tenant = args.tenant or "default"
        select = lambda text: engine.select_demonstrations(text, pool, tenant=tenant, **options)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    errors, tokens, started = 0, 0, time.perf_counter()
    try:
        for n, row in enumerate(rows):
            row_id = row.get("id", n)
            try:
                if not isinstance(row.get("input"), str):
                    raise InvalidArgument("each line needs an 'input' string")
                result = select(row["input"])
                tokens += result.selected_tokens
                line = _row(result, row_id)
            except caught as exc:
                failure = exc if isinstance(exc, RagpressError) else common.remote_error(exc)
                if args.input:  # one selection: fail loudly, as every command does
                    raise failure from exc
                errors += 1  # a batch goes on, and says which line failed
                line = {"id": row_id, "line": n + 1, "error": str(failure)}
            print(json.dumps(line, ensure_ascii=False), file=out)
    finally:
        if args.output:
            out.close()
        if args.server:
            client.close()
    if args.batch:
        done = len(rows) - errors
        print(f"{len(rows)} lines, {errors} errors, mean {tokens / max(1, done):.1f} demonstration tokens, "
              f"{(time.perf_counter() - started) / max(1, len(rows)) * 1000:.1f} ms a line", file=sys.stderr)
    return 1 if errors and errors == len(rows) else 0


def _engine(args: argparse.Namespace):
    from middleware.library import Ragpress

    return Ragpress(common.settings(args))


def add_commands(sub: "argparse._SubParsersAction") -> None:
    """Register ``demos index`` and ``demos select`` on the ``ragpress`` parser."""
    demos = sub.add_parser("demos", help="few-shot demonstration pools and selection")
    groups = demos.add_subparsers(dest="demos_command", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--server", default=None, help="gRPC address; default: in-process on data_dir")
    shared.add_argument("--tenant", default=None)
    shared.add_argument("--timeout", type=float, default=120.0)
    shared.add_argument("--config", default=None, help="TOML settings file (in-process mode)")

    index = groups.add_parser("index", parents=[shared], help="upsert and delete demonstrations of a named pool")
    index.add_argument("pool")
    index.add_argument("--file", help='JSONL of {"id", "input", "output", "label", "metadata"} (\'-\': stdin)')
    index.add_argument("--delete", action="append", help="a demonstration id to delete (repeatable)")
    index.set_defaults(func=cmd_index)

    select = groups.add_parser("select", parents=[shared], help="choose demonstrations for one input or a batch")
    select.add_argument("--pool", help="a stored pool's name")
    select.add_argument("--pool-file", help="an inline pool: JSONL of demonstrations")
    select.add_argument("--input", help="one input")
    select.add_argument("--batch", help='JSONL of {"id", "input"} (\'-\': stdin)')
    select.add_argument("--output", help="write JSONL here (default: stdout)")
    select.add_argument("--method", default="similar", help="random, similar, mmr, balanced or dynamic")
    select.add_argument("-k", "--max-demonstrations", dest="k", type=int, default=4)
    select.add_argument("--budget", type=float, default=None,
                        help="token ceiling (>= 1) or share of the fixed-k block (< 1)")
    select.add_argument("--model", default="gpt-4o", help="target model whose tokenizer counts the budget")
    select.add_argument("--option", action="append", help="strategy option key=value (repeatable)")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--core", action="append", help="a core demonstration id, placed first (repeatable)")
    select.add_argument("--order", default="nearest_last", choices=("nearest_last", "nearest_first", "ranked"))
    select.add_argument("--compress", default=None, help="compression method for long inputs, e.g. extractive")
    select.add_argument("--compress-above", type=int, default=None, help="tokens above which an input is compressed")
    select.add_argument("--template", default=None, help="a demonstration's rendering: {input} {output} {label} {id}")
    select.set_defaults(func=cmd_select)
