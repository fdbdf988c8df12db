"""``ragpress index`` / ``ragpress retrieve``, in-process and against a server."""

from __future__ import annotations

import json

import pytest

from middleware.cli import main
from middleware.library import Ragpress
from middleware.settings import Settings
from tests.servers import ThreadedServer

DOCS = [{"id": "paris", "title": "Paris", "text": "Paris is the capital of France.", "metadata": {"lang": "en"}},
        {"id": "rom", "title": "Rom", "text": "Rom ist die Hauptstadt Italiens.", "metadata": {"lang": "de"}}]


@pytest.fixture
def docs_file(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    return path


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_index_and_retrieve_in_process(tmp_path, docs_file, capsys, monkeypatch):
    monkeypatch.setenv("RAGPRESS_EMBEDDING_MODEL", "hashing")
    monkeypatch.setenv("RAGPRESS_DATA_DIR", str(tmp_path / "data"))
    assert main(["index", "caps", "--docs", str(docs_file)]) == 0
    assert _lines(capsys) == [{"upserted_documents": 2, "deleted_documents": 0, "chunks": 2}]
    # a second process would find the saved collection: this call builds a fresh engine
    assert main(["retrieve", "caps", "Hauptstadt", "--mode", "lexical", "--filter", '{"lang": "de"}']) == 0
    out = _lines(capsys)
    assert [r["id"] for r in out] == ["rom"] and out[0]["metadata"] == {"lang": "de"}
    assert main(["retrieve", "nope", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["retrieve", "caps", "x", "--filter", "[1"]) == 2
    assert "--filter" in capsys.readouterr().err


def test_index_and_retrieve_against_a_server(tmp_path, docs_file, capsys):
    engine = Ragpress(Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path)))
    with ThreadedServer(engine) as srv:
        assert main(["index", "caps", "--docs", str(docs_file), "--server", srv.address]) == 0
        assert _lines(capsys)[0]["chunks"] == 2
        assert main(["index", "caps", "--delete", "paris", "--server", srv.address]) == 0
        assert _lines(capsys)[0]["deleted_documents"] == 1
        assert main(["retrieve", "caps", "capital", "--server", srv.address, "--top-k", "5"]) == 0
        assert [r["id"] for r in _lines(capsys)] == ["rom"]


def test_in_process_index_prints_no_faiss_loader_noise(tmp_path, docs_file, subprocess_env):
    """faiss logs a ModuleNotFoundError at INFO when it has no AVX512 build; users saw it on every call."""
    import subprocess
    import sys

    env = dict(subprocess_env, RAGPRESS_EMBEDDING_MODEL="hashing", RAGPRESS_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "middleware.cli", "index", "caps", "--docs", str(docs_file)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chunks"] == 2
    assert "faiss.loader" not in done.stderr and "ModuleNotFoundError" not in done.stderr
