"""Regenerates the committed Python code for the ragpress API from the .proto files.

    .venv/bin/python proto/generate.py            # writes proto/ragpress/v1/*_pb2*.py(i)
    .venv/bin/python proto/generate.py OUT_DIR    # writes elsewhere (the staleness test)
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = sorted(str(p.relative_to(HERE)) for p in (HERE / "ragpress").rglob("*.proto"))


def generate(out_dir: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
