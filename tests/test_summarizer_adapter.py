"""The shipped LoRA summariser (local/smollm2-summarizer): merging, its training helpers, and a real summary.

The merge and the summary run on the real SmolLM2 (marked slow); the adapter
checks use real torch layers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compressors import faithfulness
from middleware.errors import InvalidArgument, Unavailable
from middleware.library import Ragpress
from middleware.llm import local
from middleware.llm.adapters import merge_lora, read_meta
from middleware.settings import Settings
from middleware.types import Budget, Document, Stage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import train_summarizer  # noqa: E402

ADAPTER = local.ADAPTER_DIR / local.DERIVED["smollm2-summarizer"][1]


def _adapter(path: Path, name: str, a: np.ndarray, b: np.ndarray, rank: int, alpha: float) -> Path:
    meta = np.frombuffer(json.dumps({"rank": rank, "alpha": alpha}).encode(), dtype=np.uint8)
    np.savez(path, **{f"{name}.A": a, f"{name}.B": b, "__meta__": meta})
    return path


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(6, 4, bias=False)


def test_merge_adds_scaled_b_times_a(tmp_path):
    net = Net()
    before = net.proj.weight.detach().clone()
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 6)).astype(np.float16), rng.normal(size=(4, 2)).astype(np.float16)
    assert merge_lora(net, _adapter(tmp_path / "x.npz", "proj", a, b, rank=2, alpha=4.0)) == 1
    expected = before + 2.0 * torch.from_numpy(b.astype(np.float32) @ a.astype(np.float32))
    assert torch.allclose(net.proj.weight, expected, atol=1e-6)
    x = torch.randn(3, 6)
    assert torch.allclose(net.proj(x), x @ before.t() + 2.0 * (x @ torch.from_numpy(a.astype(np.float32)).t()
                                                              @ torch.from_numpy(b.astype(np.float32)).t()),
                          atol=1e-5)


def test_bad_adapters_fail_clearly(tmp_path):
    with pytest.raises(Unavailable, match="do not fit a weight of shape"):
        merge_lora(Net(), _adapter(tmp_path / "shape.npz", "proj", np.zeros((2, 5), np.float16),
                                   np.zeros((4, 2), np.float16), 2, 4.0))
    with pytest.raises(Unavailable, match="no layer 'nowhere'"):
        merge_lora(Net(), _adapter(tmp_path / "name.npz", "nowhere", np.zeros((2, 6), np.float16),
                                   np.zeros((4, 2), np.float16), 2, 4.0))
    np.savez(tmp_path / "meta.npz", **{"proj.A": np.zeros((2, 6)), "proj.B": np.zeros((4, 2))})
    with pytest.raises(Unavailable, match="no __meta__"):
        merge_lora(Net(), tmp_path / "meta.npz")


def test_the_shipped_adapter_is_small_and_described():
    meta = read_meta(ADAPTER)
    assert meta["rank"] > 0 and meta["alpha"] > 0 and meta["epoch"] >= 1
    assert ADAPTER.stat().st_size < 12_000_000
    card = (local.ADAPTER_DIR / "SMOLLM2_SUMMARIZER.md").read_text(encoding="utf-8")
    assert "train_summarizer.py" in card and "dev" in card


def test_unknown_local_models_list_the_derived_one(tmp_path):
    with pytest.raises(InvalidArgument, match="smollm2-summarizer"):
        local.resolve_dir("nope", {}, tmp_path)


@pytest.mark.parametrize("kind", ["q4", "q8"])
def test_packing_gives_quantised_weights_back_exactly(kind):
    g = torch.Generator().manual_seed(1)
    blocks = 8 * 6
    if kind == "q4":  # w = d * q + m, q in 0..15, with 0 and 15 in every block (as quantisation leaves them)
        q = torch.randint(0, 16, (blocks, 32), generator=g)
        q[:, 0], q[:, 1] = 0, 15
        d = (torch.rand(blocks, generator=g) / 50).half().float()
        m = (-torch.rand(blocks, generator=g) / 10).half().float()
        w, name = (q * d[:, None] + m[:, None]).reshape(8, 192), "model.layers.0.mlp.up_proj.weight"
    else:  # w = d * q, |q| <= 127 with 127 reached
        q = torch.randint(-127, 128, (blocks, 32), generator=g)
        q[:, 3] = 127
        d = (torch.rand(blocks, generator=g) / 100).half().float()
        w, name = (q * d[:, None]).reshape(8, 192), "model.embed_tokens.weight"
    packed = train_summarizer._pack_tensor(name, w)
    assert packed["kind"] == kind
    assert torch.equal(train_summarizer._unpack_tensor(packed), w)


def test_targets_put_the_answer_first_and_respect_the_limits():
    gold = {"answers": ["1887"], "supporting_facts": [["A", 0], ["B", 1]],
            "sentences": {"A": ["Alice founded the club.", "She liked tea."],
                          "B": ["The club grew.", "The club was founded in 1887 in Leeds."]}}
    read = [Document("a", "Alice founded the club. She liked tea.", "A"),
            Document("b", "The club grew. The club was founded in 1887 in Leeds.", "B")]
    count = lambda text: len(text.split())  # noqa: E731
    both = train_summarizer._target(gold, read, 40, 40, count)
    assert both == "The club was founded in 1887 in Leeds. Alice founded the club."
    assert train_summarizer._target(gold, read, 9, 40, count) == "The club was founded in 1887 in Leeds."
    # No gold sentence read: the first read sentence holding the answer, else nothing.
    other = {**gold, "supporting_facts": [["C", 0]]}
    assert train_summarizer._target(other, read, 40, 40, count) == "The club was founded in 1887 in Leeds."
    assert train_summarizer._target({**other, "answers": ["1999"]}, read, 40, 40, count) == ""


@pytest.mark.slow
def test_the_derived_model_is_the_base_plus_the_adapter(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM

    base_dir = Settings().resolved_cache_dir() / "models" / "smollm2-135m-instruct"
    merged_dir = local.resolve_dir("smollm2-summarizer", {"smollm2": str(base_dir)}, tmp_path)
    assert merged_dir.parent == tmp_path and (merged_dir / "tokenizer.json").is_file()
    assert local.resolve_dir("smollm2-summarizer", {"smollm2": str(base_dir)}, tmp_path) == merged_dir  # once
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32)
    meta = read_meta(ADAPTER)
    with np.load(ADAPTER) as z:
        name = "model.layers.3.self_attn.q_proj"
        delta = torch.from_numpy(z[f"{name}.B"].astype(np.float32) @ z[f"{name}.A"].astype(np.float32))
    got = merged.get_submodule(name).weight - base.get_submodule(name).weight
    assert torch.allclose(got, delta * meta["alpha"] / meta["rank"], atol=1e-5)
    assert torch.equal(merged.model.norm.weight, base.model.norm.weight)


@pytest.mark.slow
def test_the_summariser_writes_a_guarded_attributed_summary(smollm2):
    base_dir = Settings().resolved_cache_dir() / "models" / "smollm2-135m-instruct"
    engine = Ragpress(Settings(embedding_model="hashing", local_model_dirs=f"smollm2={base_dir}",
                               local_device="cpu", local_threads=1))
    docs = [Document("paris", "Paris is the capital of France. It has 2,102,650 inhabitants. The Seine flows "
                              "through it.", "Paris"),
            Document("bread", "Bread is baked from flour. Baguettes are long.", "Bread")]
    pipeline = [Stage("extractive", budget=Budget(max_tokens=300)),
                Stage("abstractive", {"summarizer": "local/smollm2-summarizer", "cache": False})]
    result = engine.compress("How many people live in Paris?", docs, 60, pipeline=pipeline)
    stage = result.stages[-1]
    assert result.compressed_tokens <= 60
    assert stage.usage.model == "local/smollm2-summarizer" and stage.usage.completion_tokens > 0
    assert stage.details["outcome"] in ("passed", "repaired", "replaced")
    if stage.details["outcome"] != "replaced":
        source = faithfulness.index(f"{d.title}\n{d.text}" for d in docs)
        for item in stage.details["attribution"]:
            assert faithfulness.check(item["text"], source).ok and set(item["documents"]) <= {"paris", "bread"}
