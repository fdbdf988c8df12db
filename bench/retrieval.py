"""Retrieval benchmark: recall of gold HotpotQA paragraphs (dense vs BM25 vs
hybrid), index build time and size at 10k and 100k chunks, query latency.

    nice .venv/bin/python bench/retrieval.py [--queries-at-scale 50]

Corpus: every paragraph of both shared HotpotQA files (deduplicated by title and
text), one document each (title + sentences), embedded with all-MiniLM-L6-v2.
Recall@k: share of a question's gold (supporting-fact) titles among the titles
of the top-k documents, averaged over questions; reported for the 100
distractor-dev questions and for every question of both files whose gold
paragraphs are all in the corpus.

Scale (10k and 100k chunks): the corpus paragraphs plus synthetic chunks, each
a corpus paragraph's sentences followed by one sentence of another paragraph
(seeded), so BM25 sees realistic vocabulary. Embedding 100k chunks with MiniLM
on this 2-core machine would take hours, so a synthetic chunk's vector is its
source paragraph's real vector plus Gaussian noise (sigma 0.05 a dimension),
normalised: a flat FAISS index costs the same whatever the values. Index time is
measured (chunking with the model's tokenizer, FAISS add, tables, BM25, save);
embedding time is extrapolated from the throughput measured on the corpus (in
CPU seconds of one thread) and reported separately. Query latency excludes embedding the query (reported
separately as well), so the modes compare on the index alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("RAGPRESS_HOTPOT_DIR", "/work/shared/data/hotpotqa"))
FILES = ("hotpot_distractor_dev100.jsonl", "hotpot_retrieved_500.jsonl")
CACHE = ROOT / ".ragpress" / "bench"
MODES = ("dense", "lexical", "hybrid")


def load() -> tuple[list[dict], list[tuple[str, str]]]:
    rows = []
    for name in FILES:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(dict(json.loads(line), file=name))
    seen: dict[tuple[str, str], None] = {}
    for row in rows:
        for title, sents in row["context"]:
            seen.setdefault((title, " ".join(s.strip() for s in sents)), None)
    return rows, list(seen)


def embed_cached(embedder, texts: list[str], tag: str, part: int = 256) -> tuple["object", float]:
    """Vectors for texts and the measured chunks/second (of CPU time: the machine is
    shared, so wall time would measure the neighbours). Cached on disk by content,
    in parts, so an interrupted run resumes."""
    import numpy as np

    key = hashlib.sha256(("\x00".join(texts) + embedder.name).encode()).hexdigest()[:16]
    folder = CACHE / f"{tag}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    parts, cpu = [], 0.0
    for k in range(0, len(texts), part):
        path = folder / f"{k:07d}.npz"
        if not path.exists():
            started = time.process_time()
            vectors = embedder.embed(texts[k:k + part])
            np.savez(path, vectors=vectors, cpu_s=time.process_time() - started)
            print(f"embedded {k + part}/{len(texts)}", flush=True)
        with np.load(path) as z:
            parts.append(z["vectors"])
            cpu += float(z["cpu_s"])
    return np.concatenate(parts), len(texts) / cpu


class Precomputed:
    """An embedder that answers from a table of known vectors, else from the model."""

    def __init__(self, model, table: dict[str, "object"]) -> None:
        self.model = model
        self.table = table
        self.name = f"precomputed:{model.name}"
        self.max_tokens = model.max_tokens
        self.token_spans = model.token_spans

    def embed(self, texts):
        import numpy as np

        missing = [t for t in texts if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.model.embed(missing)))
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def documents(corpus: list[tuple[str, str]]):
    from middleware.types import Document

    return [Document(id=f"d{i}", title=t, text=x) for i, (t, x) in enumerate(corpus)]


def recall(coll, questions, title_of, mode: str) -> dict[str, float]:
    from retrievers import Query

    out = {5: [], 10: []}
    for q in questions:
        hits = coll.retrieve(Query(q["question"], top_k=30, mode=mode))
        titles: list[str] = []
        for h in hits:
            t = title_of[h.document_id]
            if t not in titles:
                titles.append(t)
        gold = q["gold"]
        for k in out:
            out[k].append(len(gold & set(titles[:k])) / len(gold))
    return {f"recall@{k}": round(statistics.fmean(v), 4) for k, v in out.items()}


def latency(coll, queries: list[str], mode: str) -> dict[str, float]:
    from retrievers import Query

    times = []
    for q in queries:
        started = time.perf_counter()
        coll.retrieve(Query(q, top_k=10, mode=mode))
        times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2)}


def synthetic(corpus, vectors, n: int, seed: int = 7):
    """Corpus paragraphs first, then synthetic chunks up to n (see the module docstring)."""
    import numpy as np

    from middleware.types import Document

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    docs = documents(corpus)[:n]
    table = {}
    for d, v in zip(docs, vectors):
        table[f"{d.title}\n{d.text}"] = v
    while len(docs) < n:
        i, j = rng.randrange(len(corpus)), rng.randrange(len(corpus))
        other = corpus[j][1].split(". ")
        text = f"{corpus[i][1]} {rng.choice(other).strip()}"
        d = Document(id=f"s{len(docs)}", title=corpus[i][0], text=text)
        v = vectors[i] + noise.normal(0.0, 0.05, vectors.shape[1]).astype(np.float32)
        table[f"{d.title}\n{d.text}"] = v / np.linalg.norm(v)
        docs.append(d)
    return docs, table


def scale_run(model, corpus, vectors, per_second, n: int, queries: list[str]) -> dict:
    from retrievers import Collection, Query

    docs, table = synthetic(corpus, vectors, n)
    emb = Precomputed(model, table)
    with tempfile.TemporaryDirectory() as tmp:
        coll = Collection(f"scale{n}", emb, folder=Path(tmp))
        started = time.perf_counter()
        for k in range(0, len(docs), 5000):
            coll.upsert(docs[k:k + 5000])
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        coll.retrieve(Query("warm", mode="lexical"))  # builds BM25
        bm25_s = time.perf_counter() - started
        started = time.perf_counter()
        path = coll.save()
        save_s = time.perf_counter() - started
        size = path.stat().st_size
        row = {"chunks": coll.chunk_count, "index_build_s": round(index_s, 2), "bm25_build_s": round(bm25_s, 2),
               "save_s": round(save_s, 2), "file_mb": round(size / 2**20, 1),
               "faiss_mb": round(coll.chunk_count * vectors.shape[1] * 4 / 2**20, 1),
               "embedding_s_extrapolated": round(coll.chunk_count / per_second, 1)}
        for mode in MODES:
            row[mode] = latency(coll, queries, mode)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries-at-scale", type=int, default=50)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "retrieval.json"))
    ap.add_argument("--embed-only", action="store_true", help="fill the vector cache and stop")
    args = ap.parse_args()

    from middleware.offline import configure_offline

    configure_offline()
    from middleware.models import load_embedder
    from retrievers import Collection

    rows, corpus = load()
    model = load_embedder("")
    import torch

    # One thread: on a shared, overloaded 2-core machine a second thread mostly waits.
    torch.set_num_threads(int(os.environ.get("RAGPRESS_BENCH_THREADS", "1")))
    texts = [f"{t}\n{x}" for t, x in corpus]
    vectors, per_second = embed_cached(model, texts, "corpus")
    print(f"corpus: {len(corpus)} paragraphs from {len(rows)} questions; embedding {per_second:.1f} chunks/s")
    if args.embed_only:
        return

    titles = {t for t, _ in corpus}
    questions = []
    for row in rows:
        gold = {t for t, _ in row["supporting_facts"]}
        if gold and gold <= titles:
            questions.append({"question": row["question"], "gold": gold, "file": row["file"]})
    dev = [q for q in questions if q["file"] == FILES[0]]

    # query embedding latency, measured on uncached queries before anything caches them
    qtimes = []
    for q in questions[:50]:
        started = time.perf_counter()
        model.embed([q["question"]])
        qtimes.append((time.perf_counter() - started) * 1000.0)
    qtimes.sort()
    model.embed([q["question"] for q in questions])  # the rest of the queries, once

    docs = documents(corpus)
    coll = Collection("hotpot", Precomputed(model, dict(zip(texts, vectors))))
    coll.upsert(docs)
    title_of = {d.id: d.title for d in docs}
    results = {"corpus_paragraphs": len(corpus), "chunks": coll.chunk_count, "questions_dev100": len(dev),
               "questions_all": len(questions), "embedding_chunks_per_s": round(per_second, 1),
               "query_embedding_ms": {"p50_ms": round(qtimes[len(qtimes) // 2], 2),
                                      "p95_ms": round(qtimes[int(len(qtimes) * 0.95) - 1], 2)},
               "recall": {}, "latency_corpus": {}, "scale": [],
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_avg_start": os.getloadavg()[0]}}
    for mode in MODES:
        results["recall"][mode] = {"dev100": recall(coll, dev, title_of, mode),
                                   "all": recall(coll, questions, title_of, mode)}
        results["latency_corpus"][mode] = latency(coll, [q["question"] for q in questions[:200]], mode)
        print(mode, results["recall"][mode], results["latency_corpus"][mode], flush=True)
    scale_queries = [q["question"] for q in questions[: args.queries_at_scale]]
    for n in (int(s) for s in args.sizes.split(",") if s):
        results["scale"].append(scale_run(model, corpus, vectors, per_second, n, scale_queries))
        print(results["scale"][-1], flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


def print_table(r: dict) -> None:
    print(f"\nRecall of gold paragraphs ({r['corpus_paragraphs']} paragraphs; "
          f"{r['questions_dev100']} dev100 questions / {r['questions_all']} questions in all)")
    print("| mode | R@5 dev100 | R@10 dev100 | R@5 all | R@10 all | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for mode, rec in r["recall"].items():
        lat = r["latency_corpus"][mode]
        print(f"| {mode} | {rec['dev100']['recall@5']:.3f} | {rec['dev100']['recall@10']:.3f} | "
              f"{rec['all']['recall@5']:.3f} | {rec['all']['recall@10']:.3f} | {lat['p50_ms']} | {lat['p95_ms']} |")
    q = r["query_embedding_ms"]
    print(f"\nQuery embedding (MiniLM, one query): p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms; "
          f"passage embedding {r['embedding_chunks_per_s']} chunks/s")
    print("\n| chunks | index build s | BM25 build s | save s | file MB | FAISS MB | embedding s (extrapolated) "
          "| dense p50/p95 ms | lexical p50/p95 ms | hybrid p50/p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in r["scale"]:
        lat = " | ".join(f"{s[m]['p50_ms']} / {s[m]['p95_ms']}" for m in MODES)
        print(f"| {s['chunks']} | {s['index_build_s']} | {s['bm25_build_s']} | {s['save_s']} | {s['file_mb']} | "
              f"{s['faiss_mb']} | {s['embedding_s_extrapolated']} | {lat} |")


if __name__ == "__main__":
    main()
