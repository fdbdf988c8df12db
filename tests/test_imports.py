"""Importing the packages stays light: no torch, transformers or litellm."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "sentence_transformers", "litellm", "faiss")


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, middleware, compressors, retrievers, middleware.cli, middleware.types, middleware.settings\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
