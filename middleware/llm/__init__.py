"""The kernel's local language-model runtime: loading a local causal LM (``local.py``),
running it with a working copy of a shared KV cache (``runtime.py``), and the prefix
cache itself (``prefix_cache.py``, ``kv.py``).

It imports nothing above the kernel; the gateway that chooses between litellm and this
runtime is the service's (:mod:`middleware.generation`). Modules import torch and
transformers lazily, inside the functions that need them.
"""
