"""pyproject.toml's compatible ranges against the exact, tested locks (no network).

The locks are the tested set that setup.sh installs; pyproject.toml is what a user's
resolver sees. These checks keep the two honest with each other: a range that excludes
the tested pin, an extra whose package no lock holds, or a test tool in the runtime lock
fails here rather than in a user's environment.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

EXTRAS = ("langchain", "llamaindex", "postgres", "redis", "onnx", "dev")


def _lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _roots(path: Path) -> list[Requirement]:
    return [Requirement(line) for line in (ln.strip() for ln in path.read_text().splitlines())
            if line and not line.startswith(("#", "-r"))]


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = _lock(ROOT / "requirements.lock")
DEV = _lock(ROOT / "requirements-dev.lock")


def _requirements() -> list[tuple[str, Requirement]]:
    out = [("dependencies", Requirement(r)) for r in PROJECT["dependencies"]]
    for extra, reqs in PROJECT["optional-dependencies"].items():
        out += [(f"extra {extra}", Requirement(r)) for r in reqs]
    return [(where, r) for where, r in out if canonicalize_name(r.name) != "ragpress"]


def test_the_extras_a_user_installs_exist_and_dev_holds_every_other_extra():
    extras = PROJECT["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    self_refs = [Requirement(r) for r in extras["dev"] if canonicalize_name(Requirement(r).name) == "ragpress"]
    assert self_refs and set().union(*(r.extras for r in self_refs)) == set(EXTRAS) - {"dev"}


@pytest.mark.parametrize("where,req", _requirements(), ids=lambda v: str(v))
def test_every_declared_range_holds_its_tested_pin(where, req):
    name = canonicalize_name(req.name)
    pinned = RUNTIME.get(name) or DEV.get(name)
    assert pinned is not None, f"{req} ({where}) is in no lock"
    # Compatible, not exact: an `==` here would stop ragpress installing beside its users' packages.
    assert not any(spec.operator in ("==", "===") for spec in req.specifier), f"{req} ({where}) is pinned exactly"
    assert req.specifier.contains(pinned, prereleases=True), f"{req} ({where}) excludes the tested {pinned}"


def test_runtime_requirements_are_in_the_runtime_lock_and_test_tools_are_not():
    for where, req in _requirements():
        if where != "extra dev":
            assert canonicalize_name(req.name) in RUNTIME, f"{req} ({where}) must be in requirements.lock"
    for tool in ("pytest", "hypothesis", "import-linter", "grpcio-tools", "langchain-tests"):
        assert tool not in RUNTIME and tool in DEV


def test_the_locks_are_disjoint_and_the_dev_lock_builds_on_the_runtime_one():
    assert not set(RUNTIME) & set(DEV)
    assert "-r requirements.lock" in (ROOT / "requirements-dev.lock").read_text().splitlines()


@pytest.mark.parametrize("source,locks", [("requirements.in", (RUNTIME,)),
                                          ("requirements-dev.in", (RUNTIME, DEV))])
def test_every_root_is_locked_inside_its_constraint(source, locks):
    for req in _roots(ROOT / source):
        name = canonicalize_name(req.name)
        pinned = next((lock[name] for lock in locks if name in lock), None)
        assert pinned is not None, f"{req} ({source}) is not locked"
        assert req.specifier.contains(pinned, prereleases=True), f"{req} ({source}) vs locked {pinned}"
