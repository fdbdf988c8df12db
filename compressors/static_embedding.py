"""A static (per-token) distillation of all-MiniLM-L6-v2, for fast sentence vectors.

Every vocabulary token is run through MiniLM once, alone ("[CLS] token [SEP]",
mean-pooled); a sentence vector is then the weighted mean of its tokens' vectors,
with weights that shrink frequent tokens (SIF-style, a / (a + p(token))), and the
common component removed. Encoding a sentence costs a tokenizer call and a
lookup: about a thousand times cheaper than a transformer pass, at some loss of
quality (the benchmark reports both).

The table (30,522 x 384, float16, about 23 MB) is built on first use in about
half a minute (``deploy/setup.sh`` does it) and cached in the settings' cache
folder; it is never committed.

    python -m compressors.static_embedding [CACHE_DIR]   # build it now
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)
VERSION = 1
_lock = threading.Lock()


def build_table(model_dir: str, batch: int = 512) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    vocab = tok.vocab_size
    out = np.zeros((vocab, model.config.hidden_size), dtype=np.float32)
    cls, sep = tok.cls_token_id, tok.sep_token_id
    with torch.inference_mode():
        for start in range(0, vocab, batch):
            ids = torch.arange(start, min(vocab, start + batch)).unsqueeze(1)
            seq = torch.cat([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=seq, attention_mask=torch.ones_like(seq)).last_hidden_state
            out[start:start + len(ids)] = hidden.mean(dim=1).numpy()
    return out


class StaticEmbedder:
    """Sentence vectors from the static token table (L2-normalised float32)."""

    def __init__(self, model_dir: str, cache_dir: Path, sif_a: float = 1e-3) -> None:
        from tokenizers import Tokenizer

        self.name = "static-minilm"
        self._tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        path = cache_dir / f"static-minilm-v{VERSION}.npy"
        with _lock:
            if path.exists():
                table = np.load(path)
            else:
                log.info("building the static MiniLM token table (once) into %s", path)
                table = build_table(model_dir).astype(np.float16)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, table)
                tmp.replace(path)
        self._table = table.astype(np.float32)
        special = {self._tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]")}
        self._special = np.array(sorted(i for i in special if i is not None))
        # Token rank approximates frequency in WordPiece vocabularies built by count;
        # a Zipf estimate p ~ 1/rank gives SIF weights without a frequency list.
        ranks = np.arange(1, len(table) + 1, dtype=np.float32)
        p = (1.0 / ranks) / np.sum(1.0 / ranks)
        self._weight = (sif_a / (sif_a + p)).astype(np.float32)
        self._weight[self._special] = 0.0
        mean = self._table[1000:].mean(axis=0)
        self._common = mean / np.linalg.norm(mean)

    @property
    def dim(self) -> int:
        return self._table.shape[1]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, enc in enumerate(self._tok.encode_batch(list(texts), add_special_tokens=False)):
            ids = np.asarray(enc.ids, dtype=np.int64)
            if ids.size == 0:
                continue
            w = self._weight[ids]
            vec = (self._table[ids] * w[:, None]).sum(axis=0) / max(float(w.sum()), 1e-6)
            vec -= (vec @ self._common) * self._common
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[row] = vec / norm
        return out


if __name__ == "__main__":
    import sys

    from middleware.models import default_embedding_path
    from middleware.offline import configure_offline
    from middleware.settings import Settings

    configure_offline()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Settings().resolved_cache_dir()
    StaticEmbedder(default_embedding_path(), target)
    print(f"static MiniLM table ready in {target}")
