"""KV prefix cache on SmolLM2-135M-Instruct: time to first token on a hit vs a miss,
the store's memory against its byte bound, throughput with the cache on vs off,
and the effect of int8 storage on greedy outputs. One run, one machine.

    nice python bench/kv_cache.py [--requests 20] [--prefix-tokens 1000] [--question-tokens 30] [--threads 1]

The shared prefix is a system message holding HotpotQA paragraphs (shared data),
cut to exactly --prefix-tokens tokens; each request adds its own question cut or
padded to --question-tokens tokens, then the chat template's assistant header.
Prints a table and writes bench/results/kv_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from datapaths import data_file, existing, results_path  # noqa: E402


def build_prompts(path: Path, tok, prefix_tokens: int, question_tokens: int,
                  n: int) -> tuple[list[int], list[list[int]]]:
    rows = [json.loads(line) for line in existing(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    paragraphs = "\n\n".join(f"{t}\n{' '.join(s)}" for t, s in rows[0]["context"])
    head = tok.encode("<|im_start|>system\nAnswer the question from the documents.\n\n", add_special_tokens=False)
    tail = tok.encode("<|im_end|>\n<|im_start|>user\n", add_special_tokens=False)
    body = tok.encode(paragraphs, add_special_tokens=False)[: prefix_tokens - len(head) - len(tail)]
    prefix = head + body + tail
    assert len(prefix) == prefix_tokens, "not enough paragraph text for the prefix"
    end = tok.encode("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    pad = tok.encode(" Answer with a short phrase taken from the documents, please.", add_special_tokens=False)
    questions = []
    for row in rows[1:n + 1]:
        q = tok.encode(row["question"], add_special_tokens=False)
        q = (q + pad * 4)[:question_tokens]
        questions.append(q + end)
    return prefix, questions


def median_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 1)


def throughput(rt, prompts: list[list[int]], params, use_cache: bool, workers: int) -> dict:
    peak = 0
    latencies: list[float] = []

    def one(ids):
        nonlocal peak
        t = time.perf_counter()
        out = rt.generate(ids, params, use_cache=use_cache)
        latencies.append(time.perf_counter() - t)
        if rt.cache is not None:
            peak = max(peak, rt.cache.nbytes)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outs = list(pool.map(one, prompts))
    wall = time.perf_counter() - started
    return {"requests": len(prompts), "wall_s": round(wall, 2), "requests_per_s": round(len(prompts) / wall, 3),
            "median_latency_ms": median_ms(latencies), "peak_store_bytes": peak,
            "cached_tokens": sum(o.cached_tokens for o in outs), "outputs": [list(o.token_ids) for o in outs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--prefix-tokens", type=int, default=1000)
    ap.add_argument("--question-tokens", type=int, default=30)
    ap.add_argument("--store-mib", type=int, default=64, help="byte bound of the prefix store")
    ap.add_argument("--workers", type=int, default=4, help="concurrent requests in the throughput runs")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: the machine is shared; see docs/llm-gateway.md)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--data", default=None, help="paragraphs for the shared prefix and questions, HotpotQA row "
                                                 "format (default: $RAGPRESS_DATA/hotpotqa/hotpot_distractor_dev100.jsonl)")
    ap.add_argument("--out", default=None, help="results JSON (default: bench/results/kv_cache.json on CPU, "
                                                "kv_cache_cuda.json on a GPU; .subset.json when a size differs)")
    args = ap.parse_args()

    from middleware.offline import configure_offline

    configure_offline()
    import torch

    from middleware.llm.prefix_cache import PrefixCache, PrefixCacheParams
    from middleware.llm.runtime import LocalRuntime, SamplingParams
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    registry = ModelRegistry(Settings(embedding_model="hashing", data_dir=str(ROOT / ".ragpress"),
                                      local_device=args.device, local_threads=args.threads))
    model = registry.local_runtime("local/smollm2").model
    bound = args.store_mib * 2**20
    new_cache = lambda: PrefixCache(PrefixCacheParams(block_size=16, max_bytes=bound))
    data = Path(args.data) if args.data else data_file("hotpotqa", "hotpot_distractor_dev100.jsonl")
    prefix, questions = build_prompts(data, model.tokenizer, args.prefix_tokens, args.question_tokens,
                                      args.requests + 8)
    prompts = [prefix + q for q in questions]
    first = SamplingParams(max_new_tokens=1)

    # 1. Time to first token: misses (no cache) vs hits (prefix stored by an earlier request).
    plain = LocalRuntime(model, None)
    plain.generate(prompts[-1][:64], first)  # warm kernels and allocator
    miss = [plain.generate(p, first).ttft_seconds for p in prompts[:3]]
    rt = LocalRuntime(model, new_cache())
    store_first = rt.generate(prompts[3], first).ttft_seconds  # a miss that also stores the prefix
    hits = [rt.generate(p, first) for p in prompts[4:9]]
    hit = [h.ttft_seconds for h in hits]
    ttft = {"miss_ms": median_ms(miss), "miss_and_store_ms": round(store_first * 1000, 1), "hit_ms": median_ms(hit),
            "hit_over_miss": round(statistics.median(hit) / statistics.median(miss), 3),
            "cached_tokens_per_hit": hits[0].cached_tokens, "prompt_tokens": len(prompts[4]),
            "store_bytes": rt.cache.nbytes, "store_bound_bytes": bound}

    # 2. int8 storage: greedy outputs on hits against fp storage, 12 new tokens each.
    gen = SamplingParams(max_new_tokens=12)
    fp_rt, q8_rt = LocalRuntime(model, new_cache()), LocalRuntime(model, new_cache(), codec="int8")
    fp_rt.generate(prompts[3], first)
    q8_rt.generate(prompts[3], first)
    fp_out = [fp_rt.generate(p, gen).token_ids for p in prompts[4:8]]
    q8_out = [q8_rt.generate(p, gen).token_ids for p in prompts[4:8]]
    same = sum(a == b for a, b in zip(fp_out, q8_out))
    agree = [sum(x == y for x, y in zip(a, b)) / max(len(a), len(b), 1) for a, b in zip(fp_out, q8_out)]
    int8 = {"identical_outputs": f"{same}/{len(fp_out)}", "token_agreement": round(statistics.mean(agree), 3),
            "fp_store_bytes": fp_rt.cache.nbytes, "int8_store_bytes": q8_rt.cache.nbytes,
            "compression": round(fp_rt.cache.nbytes / max(q8_rt.cache.nbytes, 1), 2)}

    # 3. Throughput of N requests sharing the prefix, cache off vs on, same prompts, same threads.
    reqs = prompts[8:8 + args.requests]
    tp_params = SamplingParams(max_new_tokens=8)
    off = throughput(LocalRuntime(model, None), reqs, tp_params, use_cache=False, workers=args.workers)
    on_rt = LocalRuntime(model, new_cache())
    on = throughput(on_rt, reqs, tp_params, use_cache=True, workers=args.workers)
    identical = off.pop("outputs") == on.pop("outputs")
    stats = on_rt.cache.stats()

    result = {
        "device": f"{model.device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                  f"torch {torch.__version__}, {torch.get_num_threads()} threads, {model.dtype})"
                  + (f", {torch.cuda.get_device_name()}" if str(model.device).startswith("cuda") else ""),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none available in this session",
        "model": "SmolLM2-135M-Instruct", "block_size": 16,
        "prefix_tokens": len(prefix), "question_tokens": args.question_tokens,
        "ttft": ttft, "int8": int8,
        "throughput": {"cache_off": off, "cache_on": on, "speedup": round(off["wall_s"] / on["wall_s"], 2),
                       "outputs_identical": identical, "hit_rate": round(stats["hit_rate"], 3),
                       "store_bytes_max": max(off["peak_store_bytes"], on["peak_store_bytes"]),
                       "store_bound_bytes": bound},
        "command": "nice python bench/kv_cache.py " + " ".join(sys.argv[1:]),
    }
    defaults = {a.dest: a.default for a in ap._actions}
    subset = args.data is not None or any(getattr(args, k) != defaults[k] for k in
                                          ("requests", "prefix_tokens", "question_tokens", "store_mib", "workers"))
    out = results_path("kv_cache" if args.device == "cpu" else "kv_cache_cuda", subset, args.out)
    out.write_text(json.dumps(result, indent=2) + "\n")
    mib = lambda b: f"{b / 2**20:.1f} MiB"
    rows = [
        ("TTFT miss (median of 3)", f"{ttft['miss_ms']} ms"),
        ("TTFT hit (median of 5)", f"{ttft['hit_ms']} ms  ({ttft['cached_tokens_per_hit']}/{ttft['prompt_tokens']} tokens cached)"),
        ("hit / miss", f"{ttft['hit_over_miss']}  (target <= 0.2)"),
        ("store after hits / bound", f"{mib(ttft['store_bytes'])} / {mib(bound)}"),
        (f"{args.requests} requests, cache off", f"{off['wall_s']} s, {off['requests_per_s']} req/s, median {off['median_latency_ms']} ms"),
        (f"{args.requests} requests, cache on", f"{on['wall_s']} s, {on['requests_per_s']} req/s, median {on['median_latency_ms']} ms"),
        ("throughput speed-up", f"{result['throughput']['speedup']}x, outputs identical: {identical}, hit rate {result['throughput']['hit_rate']}"),
        ("store peak / bound", f"{mib(result['throughput']['store_bytes_max'])} / {mib(bound)}"),
        ("int8 vs fp store", f"{mib(int8['int8_store_bytes'])} vs {mib(int8['fp_store_bytes'])} ({int8['compression']}x)"),
        ("int8 greedy outputs (12 tokens)", f"identical {int8['identical_outputs']}, token agreement {int8['token_agreement']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"KV prefix cache, {result['device']}")
    print(f"{'measure'.ljust(width)} | value\n{'-' * width}-|------")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
