"""LoRA adapters shipped as small npz files, merged into a local model's weights once.

An adapter file holds, for each adapted linear layer ``<module>``, the matrices
``<module>.A`` (rank x in) and ``<module>.B`` (out x rank), and a ``__meta__`` entry
(UTF-8 JSON with at least ``rank`` and ``alpha``). Merging adds
``alpha / rank * B @ A`` to the layer's weight, so the merged model runs at the base
model's speed and loads like any Hugging Face folder.

torch is imported inside functions only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from middleware.errors import Unavailable


def read_meta(path: Path) -> dict[str, Any]:
    """The adapter's ``__meta__`` record."""
    import numpy as np

    with np.load(path) as z:
        if "__meta__" not in z.files:
            raise Unavailable(f"adapter {path}: no __meta__ entry")
        return json.loads(bytes(z["__meta__"]).decode())


def merge_lora(model: Any, path: Path) -> int:
    """Adds the adapter at ``path`` into ``model``'s weights in place; returns the layers changed."""
    import numpy as np
    import torch

    meta = read_meta(path)
    try:
        scale = float(meta["alpha"]) / int(meta["rank"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise Unavailable(f"adapter {path}: __meta__ needs a positive rank and an alpha") from exc
    changed = 0
    with np.load(path) as z, torch.no_grad():
        names = sorted({k[:-2] for k in z.files if k.endswith((".A", ".B"))})
        for name in names:
            try:
                layer = model.get_submodule(name)
            except AttributeError as exc:
                raise Unavailable(f"adapter {path}: the model has no layer {name!r}") from exc
            a = torch.from_numpy(z[f"{name}.A"].astype(np.float32))
            b = torch.from_numpy(z[f"{name}.B"].astype(np.float32))
            weight = layer.weight
            if b.shape[0] != weight.shape[0] or a.shape[1] != weight.shape[1] or a.shape[0] != b.shape[1]:
                raise Unavailable(f"adapter {path}: {name} has A {tuple(a.shape)} and B {tuple(b.shape)}, "
                                  f"which do not fit a weight of shape {tuple(weight.shape)}")
            weight.add_((b @ a * scale).to(weight.dtype))
            changed += 1
    if not changed:
        raise Unavailable(f"adapter {path}: no LoRA matrices in it")
    return changed
