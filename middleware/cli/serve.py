"""``ragpress serve`` and ``ragpress health``."""

from __future__ import annotations

import argparse
import sys

from middleware.cli import common


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from middleware.server import serve

    settings = common.settings(args, host=args.host, port=args.port, insecure=args.insecure or None)
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


def add_commands(sub: "argparse._SubParsersAction") -> None:
    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--host", help="bind address (default: the host setting, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port; 0 picks a free one (default: the port setting, 50051)")
    serve.add_argument("--config", metavar="FILE", help="TOML settings file")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback --host without API keys (trusted networks only)")
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser("health", help="ask a running service for its health (exit 0 when SERVING)")
    health.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT", help="the service's address")
    health.add_argument("--service", default="", help="service name ('' for the whole server)")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    health.set_defaults(func=cmd_health)
