"""Moved to the kernel: :mod:`middleware.llm.completion` (methods call litellm models too).

Re-exported here for callers of the old path; new code imports the kernel module.
"""

from middleware.llm.completion import (Completion, UpstreamCall, UpstreamError, complete,
                                       complete_blocking, cost_usd, stream, translate)

__all__ = ["Completion", "UpstreamCall", "UpstreamError", "complete", "complete_blocking",
           "cost_usd", "stream", "translate"]
