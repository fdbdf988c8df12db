"""The LLM hop of Generate (service floor): prompt assembly (``prompt.py``), litellm calls
with the fallback policy (``gateway.py``), and the request flow that compresses, prompts
and calls a litellm model or the kernel's local runtime (``generate.py``).

Modules import litellm, torch and transformers lazily, inside the functions that need them.
"""
