"""``ragpress keys new``: a fresh API key and the key-file entry that stores its digest."""

from __future__ import annotations

import argparse


def cmd_new(args: argparse.Namespace) -> int:
    from middleware.auth import ROLES, new_key
    from middleware.errors import InvalidArgument
    from retrievers.base import check_name

    if args.role not in ROLES:
        raise InvalidArgument(f"--role must be one of {sorted(ROLES)}")
    check_name("--tenant", args.tenant)
    key, digest = new_key()
    name = args.name or f"{args.tenant}-{args.role}"
    # The key goes to the person who needs it, once; only the digest goes into the key file.
    print(f"# key (shown once; give it to the caller): {key}")
    print(f'[[keys]]\nname = "{name}"\nsha256 = "{digest}"\ntenant = "{args.tenant}"\nrole = "{args.role}"')
    return 0


def add_commands(sub: "argparse._SubParsersAction") -> None:
    keys = sub.add_parser("keys", help="API keys (ragpress keys new --tenant acme --role writer)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_sub.add_parser("new", help="print a new key and its key-file entry (append it to api_keys_file)")
    new.add_argument("--tenant", required=True)
    new.add_argument("--role", default="reader", help="reader, writer or admin")
    new.add_argument("--name", default="", help="label shown in logs (default tenant-role)")
    new.set_defaults(func=cmd_new)
