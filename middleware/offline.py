"""Environment that keeps litellm, transformers and tiktoken off the network.

Called once at start-up (CLI, server, library entry points) *before* those
libraries are imported; never at import time of this package.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path

_DEFAULTS = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Loading bars would interleave with the service's logs and the CLI's output.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def litellm_tokenizer_dir() -> Path | None:
    """Folder in which litellm ships tiktoken's BPE files (cl100k, o200k, p50k)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


def configure_offline() -> None:
    """Set the offline variables unless the user already chose a value."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    # faiss tries its AVX512 build first and logs the ModuleNotFoundError at INFO when the
    # wheel has none: expected on every machine without it, and alarming to read.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        folder = litellm_tokenizer_dir()
        if folder is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)


_litellm_lock = threading.Lock()


def litellm_module():
    """``import litellm`` with its console chatter off (it prints provider hints to
    stdout, which would corrupt the CLI's JSON output). Call where litellm is needed.

    The first import is serialised: litellm's import is long and threads that
    imported it at the same moment were seen to get a half-initialised module.
    """
    with _litellm_lock:
        import litellm
        import litellm.exceptions

        litellm.suppress_debug_info = True
        # litellm's own error path reads `litellm.exceptions`; depending on import order
        # the package was seen without that attribute (its lazy __getattr__ then raised
        # AttributeError instead of mapping the upstream error). Bind it explicitly.
        if "exceptions" not in vars(litellm):
            litellm.exceptions = sys.modules["litellm.exceptions"]
    return litellm
