"""The benchmarks' one convention for data and results (bench/datapaths.py)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT


@pytest.fixture
def datapaths():
    spec = importlib.util.spec_from_file_location("datapaths", ROOT / "bench" / "datapaths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_data_folder_comes_from_ragpress_data(datapaths, monkeypatch, tmp_path):
    monkeypatch.delenv("RAGPRESS_DATA", raising=False)
    assert datapaths.data_dir() == ROOT.parent / "shared" / "data"
    monkeypatch.setenv("RAGPRESS_DATA", str(tmp_path))
    assert datapaths.data_file("nq", "x.jsonl") == tmp_path / "nq" / "x.jsonl"


def test_missing_data_names_the_variable(datapaths, monkeypatch, tmp_path):
    monkeypatch.setenv("RAGPRESS_DATA", str(tmp_path))
    with pytest.raises(SystemExit, match="Set RAGPRESS_DATA") as exit_:
        datapaths.existing(datapaths.data_file("hotpotqa", "missing.jsonl"))
    assert "missing.jsonl" in str(exit_.value) and "--data PATH" in str(exit_.value)


def test_a_subset_run_never_writes_the_full_results(datapaths, tmp_path, monkeypatch):
    monkeypatch.setattr(datapaths, "RESULTS", tmp_path)
    assert datapaths.results_path("extractive", subset=False) == tmp_path / "extractive.json"
    assert datapaths.results_path("extractive", subset=True) == tmp_path / "extractive.subset.json"
    assert datapaths.results_path("extractive", subset=True, out=str(tmp_path / "x.json")) == tmp_path / "x.json"
