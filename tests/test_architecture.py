"""The four floors (docs/architecture.md) hold: ``lint-imports`` keeps every contract in
pyproject.toml, and it would notice a crossing (checked on a copy with one added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("middleware", "compressors", "retrievers")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{root / 'proto'}")
    return subprocess.run([str(LINT), "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in PACKAGES:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copytree(ROOT / "proto" / "ragpress", root / "proto" / "ragpress",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_import_contracts_are_kept():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def _add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_a_method_importing_the_service_breaks_the_floors(tmp_path):
    root = _copy(tmp_path)
    _add_line(root / "compressors" / "lexical.py", "from middleware import pipeline  # noqa")
    out = _lint(root)
    assert out.returncode != 0
    assert "compressors.lexical -> middleware.pipeline" in out.stdout


def test_compressors_and_retrievers_stay_independent(tmp_path):
    root = _copy(tmp_path)
    _add_line(root / "retrievers" / "ops.py", "from compressors import units  # noqa")
    out = _lint(root)
    assert out.returncode != 0 and "retrievers.ops -> compressors.units" in out.stdout


def test_a_new_module_must_be_placed_on_a_floor(tmp_path):
    root = _copy(tmp_path)
    (root / "middleware" / "unplaced.py").write_text('"""A module no contract names."""\n', encoding="utf-8")
    out = _lint(root)
    assert out.returncode != 0 and "middleware.unplaced" in out.stdout


def test_a_circle_between_siblings_is_found(tmp_path):
    root = _copy(tmp_path)
    _add_line(root / "retrievers" / "base.py", "from retrievers import store  # noqa")
    out = _lint(root)
    assert out.returncode != 0 and "No cycles are allowed in retrievers" in out.stdout
    assert ".base -> .store" in out.stdout


def test_the_old_langchain_path_still_imports_with_a_deprecation_warning():
    code = ("import warnings; warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    from retrievers.langchain import RagpressCompressor\n"
            "from middleware.integrations.langchain import RagpressCompressor as New\n"
            "assert RagpressCompressor is New\n"
            "print([str(w.message) for w in caught if w.category is DeprecationWarning])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "moved to middleware.integrations.langchain" in out.stdout
