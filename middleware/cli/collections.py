"""``ragpress index`` and ``ragpress retrieve``: collections from the command line,
in-process (on ``data_dir``) or against a server (``--server``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from middleware.cli import common
from middleware.errors import InvalidArgument


def _documents(path: str) -> list[dict[str, Any]]:
    """A JSON list of documents, or JSONL (one document a line); '-' reads stdin."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read documents from {path}: {exc}") from exc
    try:
        stripped = text.lstrip()
        docs = json.loads(text) if stripped.startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{path}: not a JSON list nor JSONL: {exc}") from exc
    if not isinstance(docs, list):
        raise InvalidArgument(f"{path} must hold a JSON list of documents")
    return docs


def _chunking(args: argparse.Namespace):
    from retrievers.base import ChunkingParams

    if args.chunk_tokens is None:
        if args.overlap_tokens is not None:
            raise InvalidArgument("--overlap-tokens needs --chunk-tokens")
        return None
    return ChunkingParams(args.chunk_tokens, args.overlap_tokens)


def cmd_index(args: argparse.Namespace) -> int:
    from middleware.library import as_document
    from retrievers.base import IndexRequest

    docs = tuple(as_document(d, i) for i, d in enumerate(_documents(args.docs))) if args.docs else ()
    request = IndexRequest(args.collection, docs, tuple(args.delete or ()), _chunking(args))
    if args.server:
        from middleware.client import RagpressClient

        with RagpressClient(args.server, tenant=args.tenant, timeout=args.timeout) as client:
            result = client.index(request.collection, request.documents, request.delete_ids, request.chunking)
    else:
        from retrievers import ops

        result = ops.index(_engine(args).collections, args.tenant or "default", request)
    print(json.dumps({"upserted_documents": result.upserted_documents,
                      "deleted_documents": result.deleted_documents, "chunks": result.chunks}))
    return 0


def cmd_retrieve(args: argparse.Namespace) -> int:
    from retrievers.base import Query

    try:
        filter = json.loads(args.filter) if args.filter else {}
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--filter must be a JSON object: {exc}") from exc
    query = Query(args.query, args.top_k, args.mode, filter)
    if args.server:
        from middleware.client import RagpressClient

        with RagpressClient(args.server, tenant=args.tenant, timeout=args.timeout) as client:
            pairs = client.retrieve(args.collection, query.text, query.top_k, mode=query.mode, filter=query.filter)
    else:
        from retrievers import ops

        hits = ops.retrieve(_engine(args).collections, args.tenant or "default", args.collection, query)
        pairs = [(h.document, h.score) for h in hits]
    for doc, score in pairs:
        print(json.dumps({"id": doc.id, "score": round(score, 6), "title": doc.title, "text": doc.text,
                          "metadata": dict(doc.metadata)}, ensure_ascii=False))
    return 0


def _engine(args: argparse.Namespace):
    from middleware.library import Ragpress

    return Ragpress(common.settings(args))


def add_commands(sub: "argparse._SubParsersAction") -> None:
    """Register ``index`` and ``retrieve`` on the ``ragpress`` parser."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("collection", help="the collection's name")
    shared.add_argument("--server", metavar="HOST:PORT", help="gRPC address (default: in-process, on data_dir)")
    shared.add_argument("--tenant", help="tenant whose collection it is (default: 'default')")
    shared.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    shared.add_argument("--config", metavar="FILE", help="TOML settings file (in-process mode)")

    index = sub.add_parser("index", parents=[shared], help="upsert and delete documents of a collection")
    index.add_argument("--docs", help="JSON list or JSONL of {id, title, text, metadata} ('-': stdin)")
    index.add_argument("--delete", action="append", help="a document id to delete (repeatable)")
    index.add_argument("--chunk-tokens", type=int, metavar="N",
                       help="chunk size in tokens of the embedding model (default: the chunk_tokens setting, 200)")
    index.add_argument("--overlap-tokens", type=int, metavar="N",
                       help="overlap between chunks (default: a quarter of the chunk, at most 32)")
    index.set_defaults(func=cmd_index)

    retrieve = sub.add_parser("retrieve", parents=[shared], help="retrieve from a collection (JSONL out)")
    retrieve.add_argument("query", help="the text to search for")
    retrieve.add_argument("--top-k", type=int, default=10, help="how many documents to return")
    retrieve.add_argument("--mode", default="dense", choices=("dense", "lexical", "hybrid"),
                          help="dense (FAISS), lexical (BM25) or hybrid (rank fusion)")
    retrieve.add_argument("--filter", default=None, help='metadata equality filter, JSON: {"lang": "en"}')
    retrieve.set_defaults(func=cmd_retrieve)
