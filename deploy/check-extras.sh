#!/usr/bin/env bash
# Checks, against the package registry, that ragpress's declared ranges resolve beside
# what users already run: each extra into a fresh, empty environment, and the
# LangChain extra beside langchain 1.4.x and the newest langchain. A dry run: nothing
# is installed. Needs .venv/ (for uv) and network access to PyPI; tests/test_packaging.py
# checks the ranges against the locks offline.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/uv venv -q -p 3.11 "$tmp/venv"
check() {
  echo "== uv pip install --dry-run $*"
  .venv/bin/uv pip install -q --python "$tmp/venv/bin/python" --dry-run "$@"
}
check -e '.[langchain]' 'langchain==1.4.7'
check -e '.[langchain]' 'langchain'
for extra in llamaindex postgres redis onnx dev; do
  check -e ".[$extra]"
done
echo "all resolve"
