"""dynamic's options, chosen on the demonstration pools only (never on evaluation rows):
the neighbours' vote alone (``--tune-dynamic``) and SmolLM2 on held-out pool items
(``--tune-dynamic-llm N``). Run through ``bench/demonstrations.py``."""

from __future__ import annotations

import random
import statistics
import sys
import time

from demonstrations import BUDGETS, K, MODEL, header, index_pool, select_ours, suffix


# -- dynamic's threshold, chosen on the pools -------------------------------------------------
def tune_dynamic(engine, datasets: dict[str, tuple[list[dict], list[dict]]], sample: int = 1000) -> dict:
    """Leave-one-out on each pool (no LLM, no evaluation data): for each pool item, its K
    nearest other pool items vote; for each agreement threshold, the share of items called
    easy and how often the vote is right on them; "chosen" is the lowest threshold at which
    the vote is right on >= 90% of easy items in every pool (dynamic's first default rule,
    kept for comparison: the defaults now come from :func:`tune_dynamic_llm`)."""
    from retrievers.demos.dynamic import vote

    thresholds = [round(0.5 + 0.05 * i, 2) for i in range(11)]
    report = {}
    for name, (pool_rows, _) in datasets.items():
        pool = index_pool(engine, name, pool_rows)
        view = engine.demonstrations.pools.get(pool, "default")
        ids = random.Random(0).sample(list(view.ids()), min(sample, len(view)))
        items = []
        for doc_id in ids:
            near = view.nearest(view.vectors([doc_id]), K, exclude=frozenset({doc_id}))
            label, share = vote([view.label_of(c.id) for c in near], [c.score for c in near])
            items.append((share, label == view.label_of(doc_id)))
        report[name] = {str(t): {"easy_share": sum(s >= t for s, _ in items) / len(items),
                                 "vote_accuracy_on_easy": (statistics.fmean(ok for s, ok in items if s >= t)
                                                           if any(s >= t for s, _ in items) else None)}
                        for t in thresholds}
    chosen = next((t for t in thresholds if all(
        (report[n][str(t)]["vote_accuracy_on_easy"] or 0) >= 0.90 for n in report)), 1.0)
    return {"sample_per_pool": sample, "k": K, "by_pool": report, "chosen_agreement": chosen}


DYNAMIC_VARIANTS = [{"agreement": a, "min_demonstrations": m, "consensus": True}
                    for a in (0.5, 0.6, 0.7, 0.8) for m in (1, 2, 3)] + [
                   {"agreement": 0.8, "min_demonstrations": 1, "consensus": False}]


def tune_dynamic_llm(engine, datasets: dict[str, tuple[list[dict], list[dict]]], holdout: int,
                     batch_size: int) -> dict:
    """dynamic's options chosen with the LLM, on the pools only: ``holdout`` items of each
    pool (seeded sample) are the inputs, the rest of the pool is their pool. For each
    variant: accuracy and demonstration tokens against fixed k (``similar``). The default
    is the variant with the largest mean token saving whose accuracy is at most 1 point
    below fixed k in every pool (or, when none is, the smallest worst loss)."""
    from label_scoring import LabelScorer

    runtime = engine.models.local_runtime(MODEL)
    report = {}
    for name, (pool_rows, _) in datasets.items():
        started = time.perf_counter()
        held = set(random.Random(7).sample(range(len(pool_rows)), holdout))
        inputs = [r for i, r in enumerate(pool_rows) if i in held]
        rest = [r for i, r in enumerate(pool_rows) if i not in held]
        pool = index_pool(engine, f"{name}-tune", rest)
        labels = sorted({r["label"] for r in pool_rows})
        budget = BUDGETS.get(name, 160)
        scorer = LabelScorer(runtime.model.model, runtime.model.tokenizer, labels, batch_size)
        arms = {"similar": [select_ours(engine, pool, r["input"], "similar", budget) for r in inputs]}
        for i, options in enumerate(DYNAMIC_VARIANTS):
            arms[f"dynamic/{i}"] = [select_ours(engine, pool, r["input"], "dynamic", budget, options=options)
                                    for r in inputs]
        prompts = {a: [header(labels) + c["block"] + suffix(r["input"]) for c, r in zip(chosen, inputs)]
                   for a, chosen in arms.items()}
        predicted = dict(zip(*(lambda ps: (ps, scorer.predict(ps)))(sorted({p for v in prompts.values() for p in v}))))
        base_tokens = statistics.fmean(c["tokens"] for c in arms["similar"])
        out = {}
        for arm, chosen in arms.items():
            acc = statistics.fmean(predicted[p] == r["label"] for p, r in zip(prompts[arm], inputs))
            tokens = statistics.fmean(c["tokens"] for c in chosen)
            out[arm] = {"accuracy": acc, "demo_tokens": tokens, "saving": 1.0 - tokens / base_tokens,
                        "easy": sum(bool(c["details"].get("easy")) for c in chosen)}
        for arm in out:
            out[arm]["points_vs_fixed_k"] = 100 * (out[arm]["accuracy"] - out["similar"]["accuracy"])
        report[name] = out
        print(f"  {name}: tuned on {holdout} pool items in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    variants = [f"dynamic/{i}" for i in range(len(DYNAMIC_VARIANTS))]
    worst = {v: min(report[n][v]["points_vs_fixed_k"] for n in report) for v in variants}
    saving = {v: statistics.fmean(report[n][v]["saving"] for n in report) for v in variants}
    ok = [v for v in variants if worst[v] >= -1.0]
    chosen = max(ok, key=lambda v: (saving[v], worst[v])) if ok else max(variants, key=lambda v: worst[v])
    return {"holdout_per_pool": holdout, "k": K, "variants": dict(zip(variants, DYNAMIC_VARIANTS)),
            "by_pool": report, "worst_points": worst, "mean_saving": saving, "met_rule": bool(ok),
            "chosen": chosen, "chosen_options": DYNAMIC_VARIANTS[variants.index(chosen)]}
