"""Teacher-forced answer likelihood under a frozen local LM, with text or soft-token contexts.

Shared by the projector's training (gradients flow into the soft vectors only) and
``bench/soft_tokens.py`` (no gradients). A prompt is rendered by an injected
``render(question, context) -> chat messages`` (the service's Generate template, so
training, the benchmark and serving read the same prompt); soft contexts hold one
:data:`~middleware.llm.soft.MARKER` per document.

Speed: every prompt starts with the same system message and template head, so its KV
is computed once and expanded over the batch; only the rest of each prompt and its
answer run through the model, and the vocabulary projection runs only at answer
positions (the LM head is a fifth of SmolLM2's multiply-adds per position).

torch is imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from middleware.llm.local import LocalModel
from middleware.llm.soft import MARKER, chat_text, tokenize_with_markers

Render = Callable[[str, str], list[dict[str, str]]]


@dataclass(frozen=True)
class Forced:
    """One prompt and its answer: soft positions point into the batch's vector rows ``rows``."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    rows: tuple[int, ...]
    target: tuple[int, ...]


class Forcer:
    """Builds prompts and scores answers (summed negative log-likelihood per example)."""

    def __init__(self, local: LocalModel, render: Render, max_answer_tokens: int = 24) -> None:
        import torch

        self.local = local
        self.lm = local.model
        self.tok = local.tokenizer
        self.render = render
        self.max_answer_tokens = max_answer_tokens
        self.placeholder = int(self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id)
        self.end = int(self.tok.eos_token_id)
        self.base = getattr(self.lm, self.lm.base_model_prefix)
        for p in self.lm.parameters():
            p.requires_grad_(False)
        probe_ids, probe_pos = tokenize_with_markers(self.tok, chat_text(self.tok, render("?", MARKER)), [1],
                                                     self.placeholder)
        self.prefix = tuple(probe_ids[:probe_pos[0]])
        with torch.no_grad():
            ids = torch.tensor([self.prefix], dtype=torch.long, device=local.device)
            cache = self.base(input_ids=ids, use_cache=True).past_key_values
        self._prefix_kv = [(layer.keys, layer.values) for layer in cache.layers]

    # -- prompts -----------------------------------------------------------------------
    def answer_ids(self, answer: str, end: bool = True) -> tuple[int, ...]:
        """The answer's ids (capped), followed by the end-of-turn id when ``end`` (training:
        it teaches a brief answer; the benchmark scores the answer's own tokens only)."""
        ids = self.tok(answer, add_special_tokens=False)["input_ids"][: self.max_answer_tokens]
        return tuple(int(i) for i in ids) + ((self.end,) if end else ())

    def soft_prompt(self, question: str, groups: Sequence[int]) -> tuple[list[int], list[int]]:
        """Ids and soft positions of a prompt whose context is ``len(groups)`` documents of ``groups[i]`` vectors."""
        text = chat_text(self.tok, self.render(question, MARKER * len(groups)))
        return tokenize_with_markers(self.tok, text, list(groups), self.placeholder)

    def text_prompt(self, question: str, context: str) -> list[int]:
        text = chat_text(self.tok, self.render(question, context))
        return tokenize_with_markers(self.tok, text, [], self.placeholder)[0]

    # -- scoring -----------------------------------------------------------------------
    def nll(self, seqs: Sequence[Forced], vectors: Any = None) -> Any:
        """Summed NLL of each sequence's target (a tensor of ``len(seqs)``); differentiable in ``vectors``.

        ``vectors`` is a tensor ``(rows, hidden)``; sequence ``s`` puts ``vectors[s.rows[i]]``
        at ``s.positions[i]``. Sequences are right-padded: a causal model never attends
        forward, so padding after a sequence cannot change its own positions.
        """
        import torch
        from transformers import DynamicCache

        device = self.local.device
        p = len(self.prefix)
        use_prefix = all(s.ids[:p] == self.prefix for s in seqs)
        start = p if use_prefix else 0
        bodies = [list(s.ids[start:]) + list(s.target) for s in seqs]
        width = max(len(b) for b in bodies)
        ids = torch.full((len(seqs), width), self.placeholder, dtype=torch.long, device=device)
        for b, body in enumerate(bodies):
            ids[b, :len(body)] = torch.tensor(body, dtype=torch.long)
        embeds = self.lm.get_input_embeddings()(ids)
        rows = [(b, pos - start, r) for b, s in enumerate(seqs) for pos, r in zip(s.positions, s.rows)]
        if rows:
            if vectors is None:
                raise ValueError("soft positions without vectors")
            index_b = torch.tensor([b for b, _, _ in rows], device=device)
            index_t = torch.tensor([t for _, t, _ in rows], device=device)
            source = vectors[torch.tensor([r for _, _, r in rows], device=device)].to(embeds.dtype)
            embeds = embeds.index_put((index_b, index_t), source)
        cache = None
        if use_prefix:
            n = len(seqs)
            data = [(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous())
                    for k, v in self._prefix_kv]
            cache = DynamicCache(ddp_cache_data=data, config=self.lm.config)
        hidden = self.base(inputs_embeds=embeds, past_key_values=cache, use_cache=cache is not None).last_hidden_state
        # Target token j of sequence b sits at body index len(prompt) + j and is predicted one position earlier.
        tb, tt, tid = [], [], []
        for b, s in enumerate(seqs):
            first = len(s.ids) - start
            for j, token in enumerate(s.target):
                tb.append(b)
                tt.append(first + j - 1)
                tid.append(token)
        logits = self.lm.get_output_embeddings()(hidden[torch.tensor(tb), torch.tensor(tt)]).float()
        token_nll = -torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(tid, device=device)[:, None])[:, 0]
        out = torch.zeros(len(seqs), dtype=token_nll.dtype, device=device)
        return out.index_add(0, torch.tensor(tb, device=device), token_nll)
