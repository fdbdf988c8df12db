"""The CLI: a batch round trip in-process (fast), and the real service as a subprocess (slow)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES
from middleware.cli import main

BATCH = FIXTURES / "batch_small.jsonl"


def _records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_batch_round_trip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAGPRESS_EMBEDDING_MODEL", "hashing")
    out = tmp_path / "out.jsonl"
    # Two lines of the fixture are invalid on purpose: the batch goes on, and exits 1 to say so.
    assert main(["compress", "--input", str(BATCH), "--output", str(out), "--target-tokens", "300"]) == 1
    inputs = [line for line in BATCH.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = _records(out)
    assert len(records) == len(inputs)  # one output line per input line, in order
    by_id = {r["id"]: r for r in records}
    assert "not valid JSON" in records[3]["error"] and records[3]["line"] == 4
    assert "max_tokens must be >= 1" in by_id["bad-budget"]["error"]
    assert by_id["empty"]["context"] == "" and by_id["empty"]["documents"] == []
    assert by_id["cjk"]["documents"][0]["metadata"] == {"lang": "ja", "rank": 1}
    good = [r for r in records if "error" not in r]
    for line, rec in zip(inputs, records):
        if "error" in rec:
            continue
        src = json.loads(line)
        assert rec["id"] == src["id"]
        assert rec["compressed_tokens"] <= rec["budget_tokens"]
        expected = src.get("target_tokens", 300) if "keep_ratio" not in src else rec["budget_tokens"]
        assert rec["budget_tokens"] == expected
        ids = [d["id"] for d in src["documents"]]
        kept = [d["id"] for d in rec["documents"]]
        assert kept == [i for i in ids if i in kept] and set(kept) | set(rec["dropped_ids"]) == set(ids)
    assert len(good) == 8
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith("10 lines, 2 errors, 0 over budget, mean ratio ")
    good_only = tmp_path / "good.jsonl"
    good_only.write_text("\n".join(l for l, r in zip(inputs, records) if "error" not in r), encoding="utf-8")
    assert main(["compress", "--input", str(good_only), "--output", str(out), "--target-tokens", "300"]) == 0


def test_help_lists_methods_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compress", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    for method in ("extractive", "bm25", "cosine", "random"):
        assert method in text
    assert "(default: gpt-4o)" in text and "(default: 60.0)" in text
    assert "exit status" in text.lower()


def test_retrieve_rejects_an_unknown_mode_while_parsing(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse stops before any engine or model exists
        main(["retrieve", "wiki", "capital", "--mode", "bogus"])
    assert exit_.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_the_unknown_model_flag_allows_a_fallback_count(monkeypatch, capsys):
    monkeypatch.setenv("RAGPRESS_EMBEDDING_MODEL", "hashing")
    assert main(["compress", "--query", "q?", "--doc", "Paris has 2 people.", "--target-tokens", "9",
                 "--model", "not-a-model"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert "unknown model 'not-a-model'" in error and "--unknown-model fallback" in error
    assert main(["compress", "--query", "q?", "--doc", "Paris has 2 people.", "--target-tokens", "9",
                 "--model", "not-a-model", "--unknown-model", "fallback"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tokenizer"] == "cl100k_base" and record["tokenizer_fallback"] is True


def test_method_options_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("RAGPRESS_EMBEDDING_MODEL", "hashing")
    docs = ["--doc", "Rip It Up is an album by Orange Juice.", "--doc", "Bread is baked daily.",
            "--doc", "The band toured in spring."]
    assert main(["compress", "--query", "who sang rip it up?", *docs, "--target-tokens", "40",
                 "--option", "rerank_documents=2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["stages"][0]["details"]["reranked"] == 2
    assert main(["compress", "--query", "who sang rip it up?", *docs, "--target-tokens", "40",
                 "--option", "heads=fast"]) == 0
    assert json.loads(capsys.readouterr().out)["stages"][0]["details"]["reranked"] == 0
    assert main(["compress", "--query", "q?", *docs, "--target-tokens", "40", "--option", "heads=nq"]) == 1
    assert "heads must be one of" in json.loads(capsys.readouterr().out)["error"]
    assert main(["compress", "--query", "q?", *docs, "--target-tokens", "40", "--option", "heads"]) == 2
    assert "--option takes KEY=VALUE" in capsys.readouterr().err
    assert main(["compress", "--input", str(BATCH), "--target-tokens", "40", "--option", "heads=fast"]) == 2
    assert "--option applies to one request" in capsys.readouterr().err


def test_cli_errors_are_clear(monkeypatch, capsys):
    monkeypatch.setenv("RAGPRESS_EMBEDDING_MODEL", "hashing")
    assert main(["compress", "--input", "/nonexistent.jsonl", "--target-tokens", "5"]) == 2
    assert "cannot read /nonexistent.jsonl" in capsys.readouterr().err
    assert main(["compress", "--query", "q", "--doc", "x."]) == 1  # no budget anywhere
    assert "no budget" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ragpress(*args):
    return [sys.executable, "-m", "middleware.cli", *args]


@pytest.mark.slow
def test_real_service_serves_compresses_and_drains_on_sigterm(tmp_path, subprocess_env):
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(_ragpress("serve", "--port", str(port)), stdout=log, stderr=subprocess.STDOUT,
                            env=subprocess_env)
    try:
        deadline = time.monotonic() + 180
        status = ""
        while time.monotonic() < deadline and status != "SERVING":
            time.sleep(0.5)
            out = subprocess.run(_ragpress("health", "--server", f"127.0.0.1:{port}", "--timeout", "2"),
                                 capture_output=True, text=True, env=subprocess_env)
            status = out.stdout.strip()
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        assert status == "SERVING"
        out = tmp_path / "out.jsonl"
        done = subprocess.run(_ragpress("compress", "--server", f"127.0.0.1:{port}", "--input", str(BATCH),
                                        "--output", str(out), "--target-tokens", "150"),
                              capture_output=True, text=True, env=subprocess_env, timeout=300)
        assert done.returncode == 1, done.stderr  # the fixture's two invalid lines
        assert "2 errors, 0 over budget" in done.stderr
        records = _records(out)
        assert sum("error" in r for r in records) == 2
        # SIGTERM while a batch is in flight: the service drains and exits cleanly.
        inflight = subprocess.Popen(_ragpress("compress", "--server", f"127.0.0.1:{port}", "--input", str(BATCH),
                                              "--output", str(tmp_path / "late.jsonl"), "--target-tokens", "100"),
                                    stderr=subprocess.PIPE, text=True, env=subprocess_env)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        inflight.communicate(timeout=120)
        assert "draining" in (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_real_model_batch_keeps_answers(tmp_path, subprocess_env):
    out = tmp_path / "out.jsonl"
    done = subprocess.run(_ragpress("compress", "--input", str(BATCH), "--output", str(out), "--target-tokens", "300"),
                          capture_output=True, text=True, env=subprocess_env, timeout=600)
    assert done.returncode == 1, done.stderr  # the fixture's two invalid lines
    good = [r for r in _records(out) if "error" not in r]
    assert all(r["compressed_tokens"] <= r["budget_tokens"] for r in good)
    assert "2 errors, 0 over budget" in done.stderr.splitlines()[-1]
