"""The Python examples of docs/retrievers-langchain.md run as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from middleware.library import Ragpress
from middleware.settings import Settings
from tests.servers import ThreadedServer

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "retrievers-langchain.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _run(code: str, cwd, python_exe, env) -> str:
    env = dict(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([python_exe, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_the_doc_has_the_examples():
    assert len(BLOCKS) == 3


@pytest.mark.slow
def test_in_process_example(tmp_path, python_exe, subprocess_env):
    out = _run(BLOCKS[0], tmp_path, python_exe, subprocess_env)
    assert re.findall(r"^(\w+) paris ", out, flags=re.M) == ["dense", "lexical", "hybrid"]


def test_grpc_example(tmp_path, python_exe, subprocess_env):
    engine = Ragpress(Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path)))
    with ThreadedServer(engine) as srv:
        out = _run(BLOCKS[1].replace("127.0.0.1:50051", srv.address), tmp_path, python_exe, subprocess_env)
    assert "berlin" in out.splitlines()[0]


@pytest.mark.slow
def test_langchain_chain_example(tmp_path, python_exe, subprocess_env):
    out = _run(BLOCKS[2], tmp_path, python_exe, subprocess_env)
    assert out.startswith("Human: Answer from the context.") and "Question: How many people live in Paris?" in out
    assert re.search(r"^paris wiki/Paris \d+ ", out, flags=re.M)
