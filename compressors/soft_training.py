"""Training the soft-token projector (``ragpress train-projector``), frozen LM and frozen encoder.

Three stages, each reproducible from a fixed seed:

1. **ridge initialisation** (closed form, seconds): the linear path is fitted so that a
   document's soft token(s) approximate the mean input embedding of its first tokens
   (title and opening words), i.e. the projector starts by "writing" the words that
   name the document;
2. **reconstruction**: the frozen LM, shown only the soft tokens of a passage, is
   trained (through the projector) to regenerate the passage's first tokens;
3. **question answering**: shown the soft tokens of a question's gold passages (and of
   ``qa_distractors`` other passages of its row, shuffled in) and the question, the LM is
   trained to give the gold answer. Each batch may also carry
   ``qa_recon_batch`` reconstruction items (loss weight ``qa_recon_weight``), so that the
   projector keeps carrying the passage while it learns to answer from it.

Encoder vectors are computed once and cached on disk (``cache_dir``); the LM never
trains; only the projector's few hundred thousand weights receive gradients. A fixed
fold of the questions (:func:`compressors.soft_data.held_out`) is never trained on and
gives the held-out figures saved with the weights: answer NLL with no context, the
gold passages in full, their soft tokens, and another question's soft tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from compressors.projector import (LEXICAL_TEMPERATURE, WEIGHTS, Projector, ProjectorConfig, document_text,
                                   input_table)
from compressors.soft_data import Passage
from compressors.soft_forcing import Forced, Forcer
from middleware.embedders import Embedder

log = logging.getLogger(__name__)

RECONSTRUCT_QUESTION = "What does the context say?"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (saved with them)."""

    k: int = 2
    hidden: int = 512
    seed: int = 0
    batch: int = 8
    recon_steps: int = 500
    qa_steps: int = 300
    lr: float = 2e-3
    ridge: float = 1.0
    recon_tokens: int = 48  # tokens of a chunk the LM regenerates
    init_tokens: int = 12  # tokens whose mean embedding the ridge fit targets
    max_answer_tokens: int = 16
    recon_chunks: int = 2000
    chunk_words: int = 32  # 0: one vector per document (see ProjectorConfig.chunk_words)
    chunking: str = "words"  # or "sentences" (see ProjectorConfig.chunking)
    qa_recon_batch: int = 4  # reconstruction items added to each question-answering batch
    qa_recon_weight: float = 0.75  # their share of that batch's loss
    lexical_tokens: int = 64  # 0: no lexical channel (see ProjectorConfig.lexical_tokens)
    qa_distractors: int = 1  # non-gold passages of the same row added to each training question
    qa_two_gold_repeat: int = 1  # training questions with two or more gold passages appear this many times


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class VectorCache:
    """Encoder vectors of passages, cached in one ``.npz`` per encoder (keys: SHA-1 of the text)."""

    def __init__(self, embedder: Embedder, folder: Path | None) -> None:
        self.embedder = embedder
        self.path = folder / f"vectors-{_slug(embedder.name)}.npz" if folder else None
        self._known: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                self._known = dict(zip(data["keys"].tolist(), data["vectors"]))

    def vectors(self, passages: Sequence[Passage], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = [document_text(p.title, p.text) for p in passages]
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._known}.items())
        for start in range(0, len(todo), 64):
            chunk = todo[start:start + 64]
            for (key, _), vec in zip(chunk, self.embedder.embed([t for _, t in chunk])):
                self._known[key] = np.asarray(vec, dtype=np.float32)
            if progress is not None:
                progress(len(chunk))
        if todo and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(self._known)), vectors=np.stack(list(self._known.values())))
            tmp.replace(self.path)
        return np.stack([self._known[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)


def _slug(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:12]


# The lexical channel's alpha and gain are trained at a tenth of their value (x10 in forward):
# Adam then moves them ten times faster than the other weights.
_SCALED = 10.0


def _plain_weights(c: ProjectorConfig) -> tuple[str, ...]:
    """The weights a torch projector holds as they are saved (alpha and gain are scaled, idf is fixed)."""
    return WEIGHTS + (("w_q", "b_q") if c.lexical_tokens else ())


def torch_projector(config: ProjectorConfig, seed: int, table: np.ndarray | None = None,
                    idf: np.ndarray | None = None) -> Any:
    """The trainable twin of :class:`~compressors.projector.Projector` (same parametrisation).

    With ``config.lexical_tokens``, ``table`` (the LM's input embeddings) and ``idf`` (per
    token id) are fixed inputs of the channel; ``forward(e, tokens)`` then also takes the
    ``(n, lexical_tokens)`` token ids of :func:`~compressors.projector.token_rows`.
    """
    import torch

    c = config
    if c.lexical_tokens and (table is None or idf is None):
        raise ValueError("a lexical projector needs the LM's embedding table and an idf table")

    class TorchProjector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            self.w_lin = torch.nn.Parameter(torch.zeros(c.k * c.out_dim, c.in_dim))
            self.w_in = torch.nn.Parameter(torch.randn(c.hidden, c.in_dim, generator=gen) / c.in_dim ** 0.5)
            self.b_in = torch.nn.Parameter(torch.zeros(c.hidden))
            # Zero: the MLP starts silent and the projector starts as the ridge fit.
            self.w_out = torch.nn.Parameter(torch.zeros(c.k * c.out_dim, c.hidden))
            self.b_out = torch.nn.Parameter(torch.zeros(c.k * c.out_dim))
            if c.lexical_tokens:
                # Zero query: the channel starts as an idf-weighted mean of the text's token embeddings.
                self.w_q = torch.nn.Parameter(torch.zeros(c.k * c.out_dim, c.in_dim))
                self.b_q = torch.nn.Parameter(torch.zeros(c.k * c.out_dim))
                self.alpha_scaled = torch.nn.Parameter(torch.full((c.k,), 2.0 / _SCALED))
                self.gain_scaled = torch.nn.Parameter(torch.full((c.k,), 0.5 / _SCALED))
                self.register_buffer("table", torch.as_tensor(np.asarray(table, dtype=np.float32)), persistent=False)
                self.register_buffer("idf", torch.as_tensor(np.asarray(idf, dtype=np.float32)), persistent=False)

        def forward(self, e: Any, tokens: Any = None) -> Any:
            h = torch.nn.functional.gelu(e @ self.w_in.T + self.b_in, approximate="tanh")
            y = (e @ self.w_lin.T + h @ self.w_out.T + self.b_out).view(-1, c.k, c.out_dim)
            if not c.lexical_tokens:
                return y
            mask, ids = tokens >= 0, tokens.clamp(min=0)
            emb = self.table[ids]  # (n, t, d)
            q = (e @ self.w_q.T + self.b_q).view(-1, c.k, c.out_dim)
            alpha, gain = _SCALED * self.alpha_scaled, _SCALED * self.gain_scaled
            s = torch.einsum("nkd,ntd->nkt", q, emb) / LEXICAL_TEMPERATURE \
                + alpha[None, :, None] * self.idf[ids][:, None, :]
            s = s.masked_fill(~mask[:, None, :], -1e9)
            pooled = torch.einsum("nkt,ntd->nkd", s.softmax(-1), emb) * mask.any(-1)[:, None, None]
            return y + gain[None, :, None] * pooled

        def export(self) -> Projector:
            values = {n: getattr(self, n).detach().cpu().numpy() for n in _plain_weights(c)}
            if c.lexical_tokens:
                values.update(alpha=_SCALED * self.alpha_scaled.detach().cpu().numpy(),
                              gain=_SCALED * self.gain_scaled.detach().cpu().numpy(), idf=self.idf.cpu().numpy())
            return Projector(config, values)

    return TorchProjector()


def torch_twin(projector: Projector, table: np.ndarray | None = None) -> Any:
    """A trainable module holding ``projector``'s weights (``table``: the LM's input embeddings,
    for a projector with a lexical channel)."""
    import torch

    c, w = projector.config, projector.weights()
    module = torch_projector(c, 0, table, w.get("idf"))
    with torch.no_grad():
        for name in _plain_weights(c):
            getattr(module, name).copy_(torch.from_numpy(w[name]))
        if c.lexical_tokens:
            module.alpha_scaled.copy_(torch.from_numpy(w["alpha"] / _SCALED))
            module.gain_scaled.copy_(torch.from_numpy(w["gain"] / _SCALED))
    return module


def ridge_init(module: Any, forcer: Forcer, passages: Sequence[Passage], vectors: np.ndarray,
               config: TrainConfig) -> float:
    """Fit the linear path in closed form; returns the fit's R^2 on its own data."""
    import torch

    k, n_tok = config.k, config.init_tokens
    table = input_table(forcer.lm)
    targets = np.zeros((len(passages), k * table.shape[1]), dtype=np.float64)
    for i, p in enumerate(passages):
        ids = forcer.tok(document_text(p.title, p.text), add_special_tokens=False)["input_ids"][: n_tok * k]
        for j in range(k):
            part = ids[j * n_tok:(j + 1) * n_tok] or ids[-1:]
            targets[i, j * table.shape[1]:(j + 1) * table.shape[1]] = table[part].mean(axis=0)
    x = vectors.astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), targets.mean(axis=0)
    xc, yc = x - x_mean, targets - y_mean
    w = np.linalg.solve(xc.T @ xc + config.ridge * np.eye(x.shape[1]), xc.T @ yc)  # (in, out)
    residual = yc - xc @ w
    r2 = 1.0 - float((residual ** 2).sum() / max((yc ** 2).sum(), 1e-12))
    with torch.no_grad():
        module.w_lin.copy_(torch.from_numpy(w.T.astype(np.float32)))
        module.b_out.copy_(torch.from_numpy((y_mean - x_mean @ w).astype(np.float32)))
    return r2


@dataclass(frozen=True)
class Item:
    """A training or evaluation item: a question (or the reconstruction prompt), vectors, target."""

    question: str
    vectors: np.ndarray  # (documents, in_dim)
    target: tuple[int, ...]
    # (documents, lexical_tokens) token ids of each document's text (-1 pads), for a lexical projector
    tokens: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    """Sequences whose soft positions use rows ``0..n-1`` of the per-position vectors, and
    where each row comes from: document ``docs[i]``'s slot ``slots[i]`` of its k soft tokens."""

    seqs: tuple[Forced, ...]
    vectors: np.ndarray  # (documents, in_dim) encoder vectors of the batch's documents
    docs: tuple[int, ...]
    slots: tuple[int, ...]
    tokens: np.ndarray | None = None  # (documents, lexical_tokens), when the items carry them

    def soft(self, module: Any) -> Any:
        """The per-position soft vectors ``(positions, hidden)``, differentiable in ``module``."""
        import torch

        e = torch.from_numpy(self.vectors).float()
        projected = module(e) if self.tokens is None else module(e, torch.from_numpy(self.tokens))
        return projected[torch.tensor(self.docs, dtype=torch.long), torch.tensor(self.slots, dtype=torch.long)]


def forced_batch(forcer: Forcer, items: Sequence[Item], k: int) -> Batch:
    seqs, vectors, docs, slots, tokens = [], [], [], [], []
    for item in items:
        ids, positions = forcer.soft_prompt(item.question, [k] * len(item.vectors))
        rows = tuple(range(len(docs), len(docs) + len(positions)))
        for d in range(len(item.vectors)):
            docs.extend([len(vectors) + d] * k)
            slots.extend(range(k))
        vectors.extend(item.vectors)
        if item.tokens is not None:
            tokens.extend(item.tokens)
        seqs.append(Forced(tuple(ids), tuple(positions), rows, item.target))
    if tokens and len(tokens) != len(vectors):
        raise ValueError("a batch mixes items with and without token ids")
    return Batch(tuple(seqs), np.stack(vectors), tuple(docs), tuple(slots), np.stack(tokens) if tokens else None)


def soft_nll(forcer: Forcer, module: Any, items: Sequence[Item], k: int, batch: int = 16) -> list[float]:
    """Per-item summed answer NLL with the items' soft tokens (no gradients)."""
    import torch

    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(items), batch):
            b = forced_batch(forcer, items[start:start + batch], k)
            out.extend(float(x) for x in forcer.nll(b.seqs, b.soft(module)))
    return out


class _Draws:
    """Batches drawn without replacement, reshuffled each epoch."""

    def __init__(self, items: Sequence[Item], rng: random.Random) -> None:
        self.items, self.rng, self.order = items, rng, []

    def take(self, n: int) -> list[Item]:
        if n <= 0 or not self.items:
            return []
        while len(self.order) < n:
            fresh = list(range(len(self.items)))
            self.rng.shuffle(fresh)
            self.order.extend(fresh)
        picked = [self.items[i] for i in self.order[:n]]
        del self.order[:n]
        return picked


def _loss(forcer: Forcer, module: Any, items: Sequence[Item], k: int) -> tuple[Any, int]:
    """Mean answer NLL per target token of ``items``, and the token count."""
    b = forced_batch(forcer, items, k)
    tokens = sum(len(s.target) for s in b.seqs)
    return forcer.nll(b.seqs, b.soft(module)).sum() / tokens, tokens


def run_stage(name: str, forcer: Forcer, module: Any, items: Sequence[Item], steps: int, config: TrainConfig,
              rng: random.Random, log_line: Callable[[dict], None], progress: Any,
              mix: Sequence[Item] = (), mix_batch: int = 0, mix_weight: float = 0.0) -> list[float]:
    """``steps`` Adam steps on batches of ``items``; with ``mix``, each batch also carries
    ``mix_batch`` of those, whose mean loss weighs ``mix_weight`` in the step's loss. The
    logged loss is the ``items`` part's."""
    import torch

    if not items or steps <= 0:
        return []
    opt = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.1, 1 - s / steps))
    draws, extra = _Draws(items, rng), _Draws(mix, rng)
    losses: list[float] = []
    started, cpu0 = time.perf_counter(), cpu_seconds()
    for step in range(steps):
        main, tokens = _loss(forcer, module, draws.take(config.batch), config.k)
        loss, entry = main, {}
        mixed = extra.take(mix_batch)
        if mixed:
            side, side_tokens = _loss(forcer, module, mixed, config.k)
            loss = (1.0 - mix_weight) * main + mix_weight * side
            entry = {"mix_loss": round(float(side.detach()), 5), "mix_tokens": side_tokens}
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        schedule.step()
        value = float(main.detach())
        losses.append(value)
        log_line({"stage": name, "step": step + 1, "loss": round(value, 5), "tokens": tokens, **entry,
                  "lr": schedule.get_last_lr()[0], "wall_s": round(time.perf_counter() - started, 2),
                  "cpu_s": round(cpu_seconds() - cpu0, 2)})
        progress.set_postfix(stage=name, loss=f"{value:.3f}")
        progress.update(1)
    return losses


def to_json(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config)))
