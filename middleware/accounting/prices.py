"""Prices from litellm's offline price map (``litellm.model_cost``), never a constant.

litellm is imported lazily, on the ledger's writer thread in the service, so a
request never waits for it. ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (set by
:func:`middleware.offline.configure_offline`) keeps litellm from fetching a
newer map over the network: prices are those of the pinned litellm release.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger("ragpress.accounting")

_unpriced: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Cost:
    """Dollars for one call, before and after compression."""

    before_usd: float
    after_usd: float
    priced: bool = True

    @property
    def saved_usd(self) -> float:
        return self.before_usd - self.after_usd


def prompt_cost(model: str, prompt_tokens: int, completion_tokens: int = 0, cached_tokens: int = 0) -> float | None:
    """Dollars for a call, or None when the price map does not know ``model``.

    ``cached_tokens`` are part of ``prompt_tokens`` and are charged at the
    model's cached-read price where it has one (litellm applies it).
    """
    import litellm

    try:
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cache_read_input_tokens=min(cached_tokens, prompt_tokens))
    except Exception:  # noqa: BLE001 - litellm raises several unrelated types for an unknown model
        with _lock:
            if model not in _unpriced:
                _unpriced.add(model)
                log.warning("no price for model %r in litellm's price map; its usage is recorded at $0", model)
        return None
    return float(prompt) + float(completion)


def cost(model: str, original_tokens: int, compressed_tokens: int, completion_tokens: int = 0,
         cached_tokens: int = 0) -> Cost:
    """Price the original and the compressed prompt with the same completion and cache hits."""
    before = prompt_cost(model, original_tokens, completion_tokens, cached_tokens)
    after = prompt_cost(model, compressed_tokens, completion_tokens, cached_tokens)
    if before is None or after is None:
        return Cost(0.0, 0.0, priced=False)
    return Cost(before, after)
