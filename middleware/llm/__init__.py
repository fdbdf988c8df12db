"""The LLM hop of Generate: prompt assembly, litellm calls, local models and the KV prefix cache.

Modules import torch, transformers and litellm lazily, inside the functions that need them.
"""
