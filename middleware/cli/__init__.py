"""``ragpress``: serve, health, compress (one request from flags, or a JSONL batch), generate,
usage, index and retrieve (collections), demos (few-shot demonstration pools and selection).

Each command group lives in its own module with an ``add_commands(sub)`` function;
:data:`COMMANDS` lists them in the order ``--help`` shows them. Modules import their
heavy dependencies inside the command functions, so ``ragpress --help`` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from typing import Sequence

from middleware.errors import RagpressError
from middleware.offline import configure_offline

COMMANDS = ("serve", "compress", "usage", "generate", "collections", "demos", "keys", "train_projector")


def build_parser() -> argparse.ArgumentParser:
    from middleware.cli.common import HelpFormatter

    parser = argparse.ArgumentParser(prog="ragpress", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        type=str.upper, help="log level on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=functools.partial(argparse.ArgumentParser, formatter_class=HelpFormatter))
    for name in COMMANDS:
        importlib.import_module(f"middleware.cli.{name}").add_commands(sub)
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
