"""Label log-likelihood scoring with a local causal LM, for few-shot classification.

Each label is scored by the log-likelihood of `` <label>`` after the prompt (the sum
of its tokens' log-probabilities; no sampling). All labels of a prompt are scored in
ONE forward pass: the label continuations are packed after the prompt, each seeing
the prompt and itself (a custom 4D attention mask and explicit positions), so a
prompt costs one prefill however many labels there are. Prompts are batched (sorted
by length, left-padded) and the vocabulary projection runs only on the positions that
predict label tokens. The result equals scoring every (prompt, label) pair
separately (a test checks it on SmolLM2).
"""

from __future__ import annotations

from typing import Any, Sequence


class LabelScorer:
    """``scores(prompts) -> [[logp(label) for label in labels] for prompt in prompts]``, memoised by prompt."""

    def __init__(self, model: Any, tokenizer: Any, labels: Sequence[str], batch_size: int = 8) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.batch_size = batch_size
        self._label_ids = [tokenizer.encode(" " + label, add_special_tokens=False) for label in self.labels]
        self._memo: dict[str, list[float]] = {}
        self.forward_tokens = 0  # tokens actually run (for the benchmark's cost report)

    def scores(self, prompts: Sequence[str]) -> list[list[float]]:
        todo = sorted({p for p in prompts if p not in self._memo}, key=len)
        encoded = {p: self.tokenizer.encode(p, add_special_tokens=False) for p in todo}
        todo.sort(key=lambda p: len(encoded[p]))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            for prompt, row in zip(batch, self._run([encoded[p] for p in batch])):
                self._memo[prompt] = row
        return [self._memo[p] for p in prompts]

    def predict(self, prompts: Sequence[str]) -> list[str]:
        return [self.labels[max(range(len(row)), key=row.__getitem__)] for row in self.scores(prompts)]

    def _run(self, prompts: list[list[int]]) -> list[list[float]]:
        import torch

        labels = self._label_ids
        extra = sum(len(ids) for ids in labels)
        width = max(len(p) for p in prompts) + extra
        b = len(prompts)
        ids = torch.zeros(b, width, dtype=torch.long)
        pos = torch.zeros(b, width, dtype=torch.long)
        allow = torch.zeros(b, width, width, dtype=torch.bool)
        predictors: list[list[int]] = []
        for i, prompt in enumerate(prompts):
            n = len(prompt)
            off = width - n - extra  # left padding
            ids[i, off:off + n] = torch.tensor(prompt)
            pos[i, off:off + n] = torch.arange(n)
            allow[i, off:off + n, off:off + n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
            at = off + n
            rows = []
            for label in labels:
                m = len(label)
                span = slice(at, at + m)
                ids[i, span] = torch.tensor(label)
                pos[i, span] = torch.arange(n, n + m)
                allow[i, span, off:off + n] = True  # the label sees the prompt ...
                allow[i, span, span] = torch.tril(torch.ones(m, m, dtype=torch.bool))  # ... and itself
                # Token t of the label is predicted at the prompt's last position (t = 0)
                # or at the label's own position t - 1.
                rows.extend([off + n - 1, *range(at, at + m - 1)])
                at += m
            for q in range(off):  # padding attends to itself only (never all-masked: no NaN)
                allow[i, q, q] = True
            predictors.append(rows)
        mask = torch.zeros(b, 1, width, width, dtype=torch.float32)
        mask.masked_fill_(~allow[:, None], torch.finfo(torch.float32).min)
        self.forward_tokens += int(sum(len(p) + extra for p in prompts))
        with torch.inference_mode():
            hidden = self.model.model(input_ids=ids, attention_mask=mask, position_ids=pos).last_hidden_state
            out = []
            for i in range(b):
                logp = torch.log_softmax(self.model.lm_head(hidden[i, predictors[i]]).float(), dim=-1)
                row, k = [], 0
                for label in labels:
                    row.append(float(sum(logp[k + t, tok] for t, tok in enumerate(label))))
                    k += len(label)
                out.append(row)
        return out
