"""Checks the converted SmolLM2 folder under transformers 4.x against its GGUF probe.

    bench/.venv-llmlingua/bin/python bench/baselines/check_smollm2_v4.py MODEL_DIR

probe.json (written by convert_smollm2.py from the GGUF load under transformers 5)
holds token ids and per-token NLL for a fixed sentence; a mismatch here means the
4.x load reads the config differently (rope_theta, tied embeddings, tokenizer).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = Path(sys.argv[1])
    probe = json.loads((d / "probe.json").read_text(encoding="utf-8"))
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
    ids = tok(probe["text"], return_tensors="pt").input_ids
    if ids[0].tolist() != probe["ids"]:
        raise SystemExit(f"tokenizer mismatch: {ids[0].tolist()} != {probe['ids']}")
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        nll = -logp.gather(1, ids[0, 1:, None])[:, 0]
    diff = (nll - torch.tensor(probe["nll"])).abs().max().item()
    if diff > 1e-3:
        raise SystemExit(f"per-token NLL differs from the GGUF load by up to {diff:.4f}")
    print(f"ok: tokenizer ids match, max NLL difference {diff:.2e}")


if __name__ == "__main__":
    main()
