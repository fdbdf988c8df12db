"""Shared fixtures. Fast tests use the model-free hashing embedder; tests marked
``slow`` load the real all-MiniLM-L6-v2 once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from middleware.offline import configure_offline

configure_offline()

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
    """SmolLM2-135M-Instruct, loaded once (converted to safetensors under .ragpress/ on first use)."""
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    registry = ModelRegistry(Settings(embedding_model="hashing", data_dir=str(ROOT / ".ragpress"), local_device="cpu",
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
