"""Would a cross-encoder fine-tuned from MiniLM choose better inside a passage? (training files only)

    .venv/bin/python bench/probe_cross_encoder.py --heads HOLDOUT.json [--fold 0] [--epochs 1]

A probe, not a method: it decides whether a cross-encoder is worth building into
``extractive``. all-MiniLM-L6-v2 (the packaged weights, with a new one-logit head) is
fine-tuned as a cross-encoder on (question, "title: unit") pairs of the training files'
questions outside ``--fold`` (the units of each question's gold documents and of two other
documents drawn with a fixed seed; a unit is positive when it is evidence, as the heads
learn it). Then, on the fold's questions, inside each passage that holds an accepted
answer in one of at least two units (but not all), it counts how often the unit first by
each score holds it: the heads of ``--heads`` (fit them without the fold:
``bench/train_extractive_head.py --holdout --fold N --out PATH``), the static table's
cosine, MiniLM's cosine (int8 ONNX) and the cross-encoder; and the cross-encoder's time
for one question's candidate units (torch fp32, one thread). Writes
bench/results/probe_cross_encoder.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def training_pairs(items, fold: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[float]]:
    from compressors.baselines import titled

    rng = random.Random(seed)
    pairs, labels = [], []
    for it in items:
        if it.fold == fold:
            continue
        job, seg = it.ctx.job, it.ctx.seg
        gold = [d for d in range(len(job.documents)) if it.doc_y[d]]
        others = [d for d in range(len(job.documents)) if not it.doc_y[d]]
        docs = set(gold) | set(rng.sample(others, min(2, len(others))))
        for i, unit in enumerate(seg.units):
            if unit.doc in docs:
                pairs.append((job.query, titled(job, unit)))
                labels.append(float(it.unit_y[i]))
    return pairs, labels


def fine_tune(pairs, labels, epochs: int, batch: int, lr: float, seed: int, log=print):
    import torch
    from sentence_transformers import CrossEncoder

    from middleware.embedders import default_embedding_path

    torch.manual_seed(seed)
    ce = CrossEncoder(default_embedding_path(), num_labels=1, device="cpu", max_length=128)
    model, tok = ce.model, ce.tokenizer
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    order = list(range(len(pairs)))
    steps = epochs * ((len(order) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / steps))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        random.Random(seed + epoch).shuffle(order)
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True, truncation=True,
                      max_length=128, return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            loss = loss_fn(logits, torch.tensor([labels[i] for i in idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                log(f"step {step}/{steps} loss {loss.item():.4f} ({time.perf_counter() - started:.0f} s)")
    model.eval()
    return ce, time.perf_counter() - started


def main() -> None:
    import torch

    from compressors import head
    from compressors.baselines import titled
    from diagnose_extractive import answer_holders, answer_passages, first_holds, sentence_cosine
    from metrics import normalise
    from middleware.library import Ragpress
    from train_extractive_head import TRAINING_FILES, build_items, training_files

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", required=True, help="heads fitted without --fold (train_extractive_head.py --holdout)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "probe_cross_encoder.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.heads).read_text())
    engine = Ragpress()
    static, dense = engine.models.static_embedder().embed, engine.models.onnx_embedder().embed
    items = build_items(training_files(TRAINING_FILES), engine, log=lambda m: print(m, file=sys.stderr))
    pairs, labels = training_pairs(items, args.fold, args.seed)
    print(f"{len(pairs)} training pairs ({int(sum(labels))} positive) from the questions outside fold {args.fold}",
          file=sys.stderr)
    ce, train_s = fine_tune(pairs, labels, args.epochs, args.batch, args.lr, args.seed,
                            log=lambda m: print(m, file=sys.stderr))
    heads = head.from_spec(spec)

    per_file: dict[str, dict] = {}
    times = []
    for it in items:
        if it.fold != args.fold:
            continue
        job, seg = it.ctx.job, it.ctx.seg
        accepted = [f" {n} " for n in (normalise(a) for a in it.request[1]["answers"]) if n and n not in ("yes", "no")]
        if not accepted:
            continue
        holds = answer_holders(accepted, seg)
        inside = answer_passages(seg, holds)
        if not inside:
            continue
        unit_prob = heads.score(job, seg, static, dense, heads.reading).unit
        tally = per_file.setdefault(it.source, {"passages": 0, "heads": 0, "static_cosine": 0, "dense_cosine": 0,
                                                "cross_encoder": 0})
        for u in inside:
            started = time.perf_counter()
            with torch.inference_mode():
                ce_scores = np.asarray(ce.predict([(job.query, titled(job, seg.units[i])) for i in u],
                                                  show_progress_bar=False))
            times.append((time.perf_counter() - started) * 1000 / len(u))
            scores = {"heads": unit_prob[u], "static_cosine": sentence_cosine(job, seg, static, u),
                      "dense_cosine": sentence_cosine(job, seg, dense, u), "cross_encoder": ce_scores}
            tally["passages"] += 1
            for name, s in scores.items():
                tally[name] += first_holds(s, holds, u)
    print(f"fold {args.fold}: inside each passage holding an answer in one of at least two units, "
          f"the unit first by each score holds it")
    print("| file | passages | heads (without the fold) | static cosine | MiniLM cosine | cross-encoder |")
    print("|---|---|---|---|---|---|")
    for src, t in sorted(per_file.items()):
        print(f"| {src} | {t['passages']} | {t['heads']} | {t['static_cosine']} | {t['dense_cosine']} | "
              f"{t['cross_encoder']} |")
    ms = statistics.median(times) if times else None
    print(f"cross-encoder: fine-tuned in {train_s:.0f} s; {ms:.2f} ms a unit (median, torch fp32, "
          f"{args.threads} thread(s), a passage's units in one batch)")
    Path(args.out).write_text(json.dumps({"fold": args.fold, "heads": args.heads, "epochs": args.epochs,
                                          "batch": args.batch, "lr": args.lr, "seed": args.seed,
                                          "training_pairs": len(pairs), "positives": int(sum(labels)),
                                          "train_seconds": round(train_s, 1), "ms_per_unit_p50": ms,
                                          "results": per_file}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
