"""KV block payloads: slicing a transformers cache into blocks and back.

A payload holds, for every layer, the keys and values of ``block_size`` tokens
(shape ``[1, kv_heads, block, head_dim]``), either as they are (``fp``) or as
int8 with one scale per token and head (``int8``, in the spirit of CacheGen:
4x smaller in fp32, a small measured effect on outputs; see docs/llm-gateway.md).

torch is imported inside the functions so that importing this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class FpBlock:
    """Keys and values per layer, stored as computed. Never mutated after creation."""

    keys: tuple[Any, ...]
    values: tuple[Any, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.keys) + sum(t.nbytes for t in self.values)

    def decode(self, dtype: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return self.keys, self.values


@dataclass(frozen=True)
class Int8Block:
    """Keys and values per layer as int8 with an absmax scale per (head, token)."""

    keys: tuple[Any, ...]
    key_scales: tuple[Any, ...]
    values: tuple[Any, ...]
    value_scales: tuple[Any, ...]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for group in (self.keys, self.key_scales, self.values, self.value_scales) for t in group)

    def decode(self, dtype: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        keys = tuple(q.to(dtype) * s for q, s in zip(self.keys, self.key_scales))
        values = tuple(q.to(dtype) * s for q, s in zip(self.values, self.value_scales))
        return keys, values


def _quantise(t: Any) -> tuple[Any, Any]:
    import torch

    scale = t.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127.0
    q = torch.round(t / scale).clamp(-127, 127).to(torch.int8)
    return q, scale.to(torch.float16)


CODECS = ("fp", "int8")


def encode_blocks(cache: Any, first_block: int, n_blocks: int, block_size: int, codec: str = "fp") -> list[Any]:
    """Copy blocks ``first_block .. first_block + n_blocks - 1`` out of a DynamicCache."""
    out: list[Any] = []
    layers = cache.layers
    for b in range(first_block, first_block + n_blocks):
        lo, hi = b * block_size, (b + 1) * block_size
        # .clone(): the payload must own its memory, not view the request's working cache.
        keys = tuple(layer.keys[:, :, lo:hi, :].clone() for layer in layers)
        values = tuple(layer.values[:, :, lo:hi, :].clone() for layer in layers)
        if codec == "int8":
            kq = [_quantise(k) for k in keys]
            vq = [_quantise(v) for v in values]
            out.append(Int8Block(tuple(q for q, _ in kq), tuple(s for _, s in kq),
                                 tuple(q for q, _ in vq), tuple(s for _, s in vq)))
        else:
            out.append(FpBlock(keys, values))
    return out


def assemble(payloads: Sequence[Any], config: Any, dtype: Any, keep_tokens: int | None = None) -> Any:
    """A fresh DynamicCache holding the payloads' tokens (optionally only the first ``keep_tokens``).

    The result is the request's own working copy: ``torch.cat`` allocates new
    tensors, so nothing the request does can reach the stored payloads.
    """
    import torch
    from transformers import DynamicCache

    decoded = [p.decode(dtype) for p in payloads]
    n_layers = len(decoded[0][0])
    data = []
    for layer in range(n_layers):
        k = torch.cat([d[0][layer] for d in decoded], dim=-2)
        v = torch.cat([d[1][layer] for d in decoded], dim=-2)
        if keep_tokens is not None:
            k, v = k[:, :, :keep_tokens, :], v[:, :, :keep_tokens, :]
        data.append((k.contiguous(), v.contiguous()))
    return DynamicCache(ddp_cache_data=data, config=config)


def bytes_per_token(config: Any, dtype_bytes: int, codec: str = "fp") -> int:
    """KV bytes one token costs in the store (for sizing the byte bound)."""
    text = config.get_text_config(decoder=True)
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    per_layer = 2 * heads * head_dim
    if codec == "int8":
        return text.num_hidden_layers * (per_layer * 1 + 2 * heads * 2)
    return text.num_hidden_layers * per_layer * dtype_bytes
