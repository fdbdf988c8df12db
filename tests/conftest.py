"""Shared fixtures. Fast tests use the model-free hashing embedder; tests marked
``slow`` load the real all-MiniLM-L6-v2 once per session."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from middleware.offline import configure_offline

configure_offline()

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The suite never touches a user's data: every test runs in a temporary working folder, so
# the default data_dir (".ragpress", relative) lands there, and servers started as
# subprocesses get RAGPRESS_DATA_DIR pointing into it. Derived model files (the static
# MiniLM table, SmolLM2 converted once from GGUF) stay in the virtualenv's cache folder.
# (One folder per run, also when this module is imported a second time as tests.conftest.)
SESSION_DIR = Path(os.environ.get("RAGPRESS_TESTS_DIR") or tempfile.mkdtemp(prefix="ragpress-tests-"))
os.environ["RAGPRESS_TESTS_DIR"] = str(SESSION_DIR)
DATA_DIR = SESSION_DIR / "data"
USER_DATA = ROOT / ".ragpress"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")
            if p.is_file()}


def pytest_configure(config) -> None:
    config._ragpress_user_data = _snapshot(USER_DATA)
    os.environ["RAGPRESS_DATA_DIR"] = str(DATA_DIR)
    os.chdir(SESSION_DIR)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the run if any test wrote into the repository's .ragpress/ (a user's real ledger)."""
    before = getattr(session.config, "_ragpress_user_data", None)
    os.chdir(ROOT)
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
    if before is not None and _snapshot(USER_DATA) != before:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nFAILED: the test suite wrote into {USER_DATA}; tests must use temporary folders", file=sys.stderr)


@pytest.fixture(scope="session")
def fast_engine():
    from middleware.library import Ragpress
    from middleware.settings import Settings

    return Ragpress(Settings(embedding_model="hashing"))


@pytest.fixture(scope="session")
def real_engine():
    from middleware.library import Ragpress
    from middleware.settings import Settings

    engine = Ragpress(Settings())
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RAGPRESS_CONFIG", None)
    return env


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M-Instruct, loaded once (converted to safetensors in the cache folder on first use)."""
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    registry = ModelRegistry(Settings(embedding_model="hashing", data_dir=str(DATA_DIR), local_device="cpu",
                                     local_threads=1))
    return registry.local_runtime("local/smollm2").model


@pytest.fixture(scope="module")
async def upstream():
    """A real OpenAI-compatible server on loopback (tests/openai_server.py), one per module."""
    from tests.openai_server import OpenAIServer

    server = OpenAIServer()
    await server.start()
    yield server
    await server.stop()
