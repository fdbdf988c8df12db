"""Fine-tunes SmolLM2-135M-Instruct into a query-focused summariser (a LoRA adapter), RECOMP-style.

    .venv/bin/python bench/train_summarizer.py prep            # training examples (CPU, ~2 min)
    .venv/bin/python bench/train_summarizer.py train --device auto --out middleware/llm/data/...
    .venv/bin/python bench/train_summarizer.py pack --out DIR  # base weights, compact (for a machine without them)

**prep** reads the HotpotQA training files only (``hotpotqa/hotpot_retrieved_500.jsonl``
and the distractor setting rebuilt from it by ``bench/distractor_setting.py``; never a
dev file), runs the pipeline the benchmark measures, ``extractive`` (300 tokens) then
``abstractive`` at 100, 150 and 300 tokens, and records the exact chat prompt the
method gives its summariser (the real method, with a summariser that records instead
of writing). The target summary is distilled from the gold supporting facts: the gold
sentences present in what the summariser reads, those holding the answer first, cut
at a sentence to the prompt's word limit and the method's ``max_new_tokens``; a
question whose read text holds no gold sentence falls back to the first read
sentence holding the answer, else is skipped. Every tenth question (SHA-1 of its id)
is held out for the validation loss that picks the epoch.

**train** freezes the base model and trains rank-``r`` LoRA matrices on every
attention and MLP projection, on the target tokens only (AdamW, warm-up then
cosine, fixed seed; bf16 autocast on CUDA, fp32 on CPU), and writes the adapter
of the epoch with the lowest held-out loss (fp16 npz) and a JSON-lines loss log.
It needs only torch, numpy and transformers' Llama classes, so a machine with a GPU
and no ragpress install can run it from ``pack``'s files.

**pack** writes the base weights in the quantised form they ship in (4-bit
blocks with fp16 scale and minimum, 8-bit embedding blocks with an fp16 scale), as
two files (``a.pt``: embedding and the first layers; ``b.pt``: the rest), and checks that unpacking gives the fp32 weights back.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".cache" / "summarizer"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BLOCK = 32


# ---------------------------------------------------------------- prep (ragpress installed)

def _target(gold: dict, read_docs, words: int, max_new: int, count) -> str:
    """Gold sentences present in the read text, answer-bearing first, cut to the limits."""
    from compressors import units

    sys.path.insert(0, str(HERE))
    from metrics import answer_kept

    gold_sents = set()
    for title, index in gold["supporting_facts"]:
        sents = gold["sentences"].get(title)
        if sents is not None and index < len(sents):
            gold_sents.add((title, " ".join(sents[index].split())))
    read = []
    for doc in read_docs:
        for span in units.split(doc.text):
            read.append((doc.title, " ".join(doc.text[span.start:span.end].split())))

    def holds(sentence: str) -> bool:
        return bool(answer_kept(gold["answers"], sentence))

    picked = [s for t, s in read if (t, s) in gold_sents]
    if not picked:
        picked = [s for _, s in read if holds(s)][:1]
    picked.sort(key=lambda s: not holds(s))  # stable: answer-bearing first, else read order
    out: list[str] = []
    for s in picked:
        trial = " ".join(out + [s])
        if len(trial.split()) <= words and count(trial) < max_new:
            out.append(s)
    return " ".join(out)


def prep(args) -> None:
    sys.path.insert(0, str(HERE))
    from datapaths import read_rows, resolve
    from hotpot_to_batch import convert, fold

    from compressors.abstractive import AbstractiveCompressor, AbstractiveOptions
    from compressors.base import CompressionJob
    from compressors.registry import create
    from compressors.summarizers import Summarizer, Summary
    from middleware.library import Ragpress
    from middleware.llm.local import DEFAULT_LOCAL, chat_ids, load_tokenizer
    from middleware.settings import Settings
    from middleware.types import Stage

    engine = Ragpress(Settings())
    tok = load_tokenizer(engine.models._local_dir(DEFAULT_LOCAL))

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    class Recorder(Summarizer):
        """Records the prompt the method builds; answers "NONE" so the method stops there."""

        model = f"local/{DEFAULT_LOCAL}"

        def __init__(self) -> None:
            self.calls: list[tuple[list, int]] = []

        def count(self, text: str) -> int:
            return count(text)

        def summarize(self, messages, max_new_tokens, deadline, source=""):
            self.calls.append((list(messages), max_new_tokens))
            return Summary("NONE", self.model, 0, 0, 0.0, "stop")

    recorder = Recorder()
    method = AbstractiveCompressor(AbstractiveOptions(cache=False), recorder,
                                   create("extractive", {}, engine.models), None)
    target_tok = engine.models.tokenizers.get(args.model)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    files = args.data or ["hotpotqa/hotpot_retrieved_500.jsonl", str(HERE.parent / ".cache" /
                                                                     "hotpot_train_distractor.jsonl")]
    for f in files:
        if "dev" in Path(f).name:
            raise SystemExit(f"{f}: prep reads training files only")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = skipped = 0
    with out.open("w", encoding="utf-8") as fo:
        for f in files:
            for row in read_rows(resolve(f)):
                line, gold = convert(row, None)
                if not line["documents"]:
                    continue
                first = engine.compress(line["query"], line["documents"], args.read_tokens,
                                        pipeline=[Stage("extractive")], model=args.model)
                for budget in args.budgets:
                    recorder.calls.clear()
                    job = CompressionJob(line["query"], tuple(first.documents), budget, target_tok)
                    method.compress(job)
                    if not recorder.calls:
                        skipped += 1
                        continue
                    messages, max_new = recorder.calls[0]
                    words = int(re.search(r"at most (\d+) words", messages[-1]["content"]).group(1))
                    target = _target(gold, first.documents, words, max_new, count)
                    if not target:
                        skipped += 1
                        continue
                    prompt = chat_ids(tok, messages)  # the ids the runtime gives the model
                    fo.write(json.dumps({"id": row["id"], "budget": budget, "file": Path(f).name,
                                         "holdout": fold(row["id"], 10) == 0, "answers": gold["answers"],
                                         "max_new": max_new, "prompt": prompt,
                                         "target": tok.encode(target, add_special_tokens=False) + [end],
                                         "target_text": target}) + "\n")
                    kept += 1
    print(f"wrote {out}: {kept} examples, {skipped} skipped (no prompt or no gold sentence read)")


# ---------------------------------------------------------------- pack (ragpress installed)

def _pack_tensor(name: str, w):
    import torch

    if w.ndim != 2 or w.shape[1] % BLOCK:
        return {"kind": "f32", "w": w.clone()}
    blocks = w.reshape(-1, BLOCK)
    if "embed_tokens" in name:  # 8-bit blocks: w = d * q
        d = (blocks.abs().amax(1) / 127).to(torch.float16)
        q = torch.round(blocks / d.float()[:, None]).clamp(-127, 127).to(torch.int8)
        return {"kind": "q8", "q": q, "d": d, "shape": tuple(w.shape)}
    lo, hi = blocks.amin(1), blocks.amax(1)  # 4-bit blocks: w = d * q + m
    d = ((hi - lo) / 15).to(torch.float16)
    m = lo.to(torch.float16)
    safe = torch.where(d == 0, torch.ones_like(d), d).float()
    q = torch.round((blocks - m.float()[:, None]) / safe[:, None]).clamp(0, 15).to(torch.uint8)
    return {"kind": "q4", "q": q[:, 0::2] | (q[:, 1::2] << 4), "d": d, "m": m, "shape": tuple(w.shape)}


def _unpack_tensor(p):
    import torch

    if p["kind"] == "f32":
        return p["w"]
    if p["kind"] == "q8":
        return (p["q"].float() * p["d"].float()[:, None]).reshape(p["shape"])
    lo, hi = (p["q"] & 15), (p["q"] >> 4)
    q = torch.stack([lo, hi], dim=2).reshape(lo.shape[0], -1).float()
    return (q * p["d"].float()[:, None] + p["m"].float()[:, None]).reshape(p["shape"])


def pack(args) -> None:
    import torch
    from safetensors.torch import load_file

    from middleware.library import Ragpress
    from middleware.llm.local import DEFAULT_LOCAL

    src = Ragpress().models._local_dir(DEFAULT_LOCAL)
    state = {}
    for f in sorted(src.glob("*.safetensors")):
        state.update(load_file(str(f)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, dict] = {"a": {}, "b": {}}
    worst = 0.0
    for name, w in state.items():
        p = _pack_tensor(name, w.float())
        worst = max(worst, float((_unpack_tensor(p) - w.float()).abs().max()))
        layer = re.search(r"layers\.(\d+)\.", name)
        parts["b" if layer and int(layer.group(1)) >= args.split_layer else "a"][name] = p
    for part, tensors in parts.items():
        torch.save(tensors, out / f"{part}.pt")
    (out / "config.json").write_text((src / "config.json").read_text())
    (out / "tokenizer.json").write_text((src / "tokenizer.json").read_text())
    print(f"packed {len(state)} tensors into {out}; largest unpacking error {worst:.3g}")


# ---------------------------------------------------------------- train (torch + transformers only)

def _load_base(args, device):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.base:
        return AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32).to(device)
    pack_dir = Path(args.pack)
    config = LlamaConfig.from_dict(json.loads((pack_dir / "config.json").read_text()))
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    state = {}
    for part in sorted(pack_dir.glob("*.pt")) + [Path(p) for p in args.extra_pack]:
        for name, p in torch.load(part, weights_only=True).items():
            state[name] = _unpack_tensor(p)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise SystemExit(f"weights do not match the config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # buffers were on meta
    return model.to(device)


def _add_lora(model, rank: int, alpha: float, dropout: float):
    import torch
    from torch import nn

    class LoRA(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
            self.B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
            self.scale = alpha / rank
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return self.base(x) + (self.drop(x) @ self.A.t() @ self.B.t()) * self.scale

    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for name, module in list(model.named_modules()):
        for child, sub in list(module.named_children()):
            if child in TARGETS and isinstance(sub, nn.Linear):
                lora = LoRA(sub)
                setattr(module, child, lora)
                wrapped[f"{name}.{child}" if name else child] = lora
    return wrapped


def _batches(examples, size: int, shuffle: bool, rng: random.Random):
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["prompt"]) + len(examples[i]["target"]))
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    if shuffle:
        rng.shuffle(chunks)
    return chunks


def _tensors(examples, idx, pad: int, device):
    import torch

    seqs = [examples[i]["prompt"] + examples[i]["target"] for i in idx]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, i in enumerate(idx):
        p, t = examples[i]["prompt"], examples[i]["target"]
        ids[r, :len(p) + len(t)] = torch.tensor(p + t)
        labels[r, len(p):len(p) + len(t)] = torch.tensor(t)
        mask[r, :len(p) + len(t)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def _loss(model, ids, labels, mask, device):
    import torch

    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast(
        "cpu", enabled=False)
    with ctx:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                             ignore_index=-100, reduction="sum"), int((target != -100).sum())


def train(args) -> None:
    import numpy as np
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    rows = [json.loads(line) for line in Path(args.examples).read_text().splitlines() if line.strip()]
    if args.limit:
        rows = rows[:args.limit]
    fit = [r for r in rows if not r["holdout"]]
    held = [r for r in rows if r["holdout"]]
    model = _load_base(args, device)
    model.config.use_cache = False
    wrapped = _add_lora(model, args.rank, args.alpha, args.dropout)
    params = [p for m in wrapped.values() for p in (m.A, m.B)]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    steps = args.epochs * math.ceil(len(fit) / args.batch)
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, max(0, s - warm) / max(1, steps - warm)))))
    pad = 0
    log = open(args.log, "w") if args.log else None
    best, best_epoch, step, started = math.inf, -1, 0, time.time()

    def emit(record):
        record["seconds"] = round(time.time() - started, 1)
        print(json.dumps(record), flush=True)
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()

    def held_loss():
        model.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for idx in _batches(held, args.batch, False, rng):
                loss, k = _loss(model, *_tensors(held, idx, pad, device), device)
                total, n = total + float(loss), n + k
        model.train()
        return total / max(1, n)

    emit({"event": "start", "device": device, "fit": len(fit), "held": len(held), "steps": steps,
          "lora_params": sum(p.numel() for p in params), "held_loss": held_loss(), **{
              k: getattr(args, k) for k in ("rank", "alpha", "dropout", "lr", "epochs", "batch", "seed")}})
    model.train()
    for epoch in range(args.epochs):
        for idx in _batches(fit, args.batch, True, rng):
            loss, n = _loss(model, *_tensors(fit, idx, pad, device), device)
            (loss / max(1, n)).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % args.log_every == 0:
                emit({"event": "step", "step": step, "loss": float(loss.detach()) / max(1, n),
                  "lr": sched.get_last_lr()[0]})
        held_now = held_loss()
        emit({"event": "epoch", "epoch": epoch + 1, "step": step, "held_loss": held_now})
        if held_now < best:
            best, best_epoch = held_now, epoch + 1
            arrays = {}
            for name, m in wrapped.items():
                arrays[f"{name}.A"] = m.A.detach().float().cpu().numpy().astype(np.float16)
                arrays[f"{name}.B"] = m.B.detach().float().cpu().numpy().astype(np.float16)
            meta = {"rank": args.rank, "alpha": args.alpha, "targets": list(TARGETS), "epoch": epoch + 1,
                    "held_loss": held_now, "steps": step, "lr": args.lr, "batch": args.batch, "seed": args.seed,
                    "examples": len(fit), "held_examples": len(held), "device": device}
            arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            np.savez(args.out, **arrays)
    emit({"event": "done", "best_epoch": best_epoch, "best_held_loss": best})
    if args.generate:
        with np.load(args.out) as chosen:  # the chosen epoch's matrices
            for name, m in wrapped.items():
                m.A.data.copy_(torch.from_numpy(chosen[f"{name}.A"].astype(np.float32)))
                m.B.data.copy_(torch.from_numpy(chosen[f"{name}.B"].astype(np.float32)))
        emit({"event": "generated", "adapter": "trained", **_generate(model, held, args, device)})
        if args.generate_base:
            for m in wrapped.values():
                m.scale = 0.0
            emit({"event": "generated", "adapter": "none (base model)", **_generate(model, held, args, device)})


def _generate(model, held, args, device) -> dict:
    """Greedy summaries of the held-out prompts: how often they keep an answer (no guard, no bias)."""
    import torch

    sys.path.insert(0, str(HERE))
    from metrics import answer_kept

    model.eval()
    model.config.use_cache = True
    end = held[0]["target"][-1] if held else 0
    kept, gold_kept, lengths, samples = [], [], [], []
    for i in range(0, len(held), args.batch):
        chunk = held[i:i + args.batch]
        width = max(len(r["prompt"]) for r in chunk)
        ids = torch.full((len(chunk), width), end, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(chunk):  # left padding
            ids[r, width - len(row["prompt"]):] = torch.tensor(row["prompt"])
            mask[r, width - len(row["prompt"]):] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=max(r["max_new"] for r in chunk), eos_token_id=end, pad_token_id=end)
        for r, row in enumerate(chunk):
            new = out[r, width:].tolist()
            new = new[:new.index(end)] if end in new else new
            new = new[:row["max_new"]]
            text = args.decode(new) if args.decode else None
            lengths.append(len(new))
            if text is not None:
                kept.append(answer_kept(row["answers"], text))
                gold_kept.append(answer_kept(row["answers"], row["target_text"]))
                if len(samples) < 6:
                    samples.append({"budget": row["budget"], "summary": text, "target": row["target_text"]})
    model.train()
    model.config.use_cache = False
    scored = [k for k in kept if k is not None]
    gold = [k for k in gold_kept if k is not None]
    return {"held": len(held), "answer_kept": sum(scored) / max(1, len(scored)), "answer_questions": len(scored),
            "target_answer_kept": sum(gold) / max(1, len(gold)),
            "mean_new_tokens": sum(lengths) / max(1, len(lengths)),
            "samples": samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--data", action="append", help="training files (HotpotQA row format); default: see above")
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 150, 300])
    p.add_argument("--read-tokens", type=int, default=300)
    p.add_argument("--model", default="gpt-4o", help="target model whose tokenizer counts budgets")
    p.add_argument("--out", default=str(CACHE / "examples.jsonl"))
    k = sub.add_parser("pack")
    k.add_argument("--out", default=str(CACHE / "pack"))
    k.add_argument("--split-layer", type=int, default=12, help="layers from this one on go to b.pt, the rest to a.pt")
    t = sub.add_parser("train")
    t.add_argument("--examples", default=str(CACHE / "examples.jsonl"))
    t.add_argument("--base", default=None, help="a Hugging Face model folder (default: the converted SmolLM2)")
    t.add_argument("--pack", default=None, help="a folder written by pack (instead of --base)")
    t.add_argument("--extra-pack", nargs="*", default=[], help="more packed files (e.g. carried separately)")
    t.add_argument("--out", default=str(CACHE / "adapter.npz"))
    t.add_argument("--log", default=None)
    t.add_argument("--device", default="auto")
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--alpha", type=float, default=16.0)
    t.add_argument("--dropout", type=float, default=0.05)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=0, help="first N examples (a quick check)")
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--generate", action="store_true", help="after training, summarise the held-out prompts")
    t.add_argument("--generate-base", action="store_true", help="also with the adapter off (the base model)")
    t.add_argument("--tokenizer", default=None, help="tokenizer.json for decoding (default: beside --pack/--base)")
    args = ap.parse_args()
    if args.command == "train" and not args.base and not args.pack:
        from middleware.library import Ragpress
        from middleware.llm.local import DEFAULT_LOCAL

        args.base = str(Ragpress().models._local_dir(DEFAULT_LOCAL))
    if args.command == "train":
        args.decode = _decoder(args)
    {"prep": prep, "pack": pack, "train": train}[args.command](args)


def _decoder(args):
    """Token ids -> text with the tokenizers library alone (no ragpress, no transformers tokenizer)."""
    path = Path(args.tokenizer) if args.tokenizer else Path(args.pack or args.base) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    return lambda ids: tok.decode(ids, skip_special_tokens=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
