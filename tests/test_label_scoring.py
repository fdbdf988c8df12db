"""The benchmark's label scorer (bench/label_scoring.py): packing every label after the
prompt in one forward pass gives the same log-likelihoods as scoring each (prompt,
label) pair on its own, for batched prompts of different lengths and labels of
several tokens. On the real SmolLM2 (slow)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_packed_labels_score_like_separate_sequences(smollm2):
    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    from label_scoring import LabelScorer

    labels = ["abbreviation", "description", "entity", "person", "location", "number", "Sci/Tech news"]
    prompts = ["Input: Who wrote Hamlet ?\nLabel: person\n\nInput: What is the capital of France ?\nLabel:",
               "Input: How far is the moon ?\nLabel:",
               "Classify.\n\nInput: What does NASA stand for ?\nLabel: abbreviation\n\nInput: What is CNN ?\nLabel:"]
    scorer = LabelScorer(smollm2.model, smollm2.tokenizer, labels, batch_size=2)
    packed = scorer.scores(prompts)
    tok = smollm2.tokenizer
    assert max(len(tok.encode(" " + label, add_special_tokens=False)) for label in labels) > 1
    for prompt, row in zip(prompts, packed):
        for label, score in zip(labels, row):
            head = tok.encode(prompt, add_special_tokens=False)
            tail = tok.encode(" " + label, add_special_tokens=False)
            with torch.inference_mode():
                logits = smollm2.model(input_ids=torch.tensor([head + tail])).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            alone = sum(float(logp[len(head) - 1 + t, token]) for t, token in enumerate(tail))
            assert score == pytest.approx(alone, abs=2e-3)
    before = scorer.forward_tokens
    assert scorer.scores(prompts[:1]) == packed[:1] and scorer.forward_tokens == before  # memoised
    best = [labels[max(range(len(row)), key=row.__getitem__)] for row in packed]
    assert scorer.predict(prompts) == best
