"""Retrieval benchmark: recall of gold HotpotQA paragraphs (dense vs BM25 vs
hybrid), index build time and size at 10k and 100k chunks, query latency.

    nice .venv/bin/python bench/retrieval.py [--minilm-full] [--sizes 10000,100000]

Corpus "all": every paragraph of both shared HotpotQA files (deduplicated by
title and text), one document each (title + sentences); questions: every
question of both files whose gold (supporting-fact) paragraphs are all in the
corpus. Corpus "dev100": the paragraphs of the distractor file only, with its
100 questions. Recall@k: share of a question's gold titles among the titles of
the top-k documents, averaged over questions.

Embedders. all-MiniLM-L6-v2 (the store's default) costs about 0.4 CPU-seconds a
paragraph on this shared 2-core machine, so it embeds the dev100 corpus by
default and the whole corpus only with --minilm-full (vectors are cached under
.ragpress/bench, in parts, so runs resume). The static MiniLM token table
(middleware/embedders.py: a lookup, about a thousand times cheaper)
embeds every corpus; the dev100 rows compare the two.

Scale (10k and 100k chunks): the corpus paragraphs plus synthetic chunks, each
a corpus paragraph's sentences followed by one sentence of another paragraph
(seeded), so BM25 sees realistic vocabulary; a synthetic chunk's vector is its
source paragraph's static vector plus Gaussian noise (sigma 0.05 a dimension),
normalised (384-d, as MiniLM's: a flat FAISS index costs the same whatever the
values). Index time is measured (chunking with MiniLM's tokenizer, FAISS add,
tables), BM25 build and save separately; the MiniLM embedding time is
extrapolated from its measured CPU throughput. Query latency excludes embedding
the query (reported separately), so the modes compare on the index alone.
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
sys.path.insert(0, str(ROOT / "bench"))
from datapaths import data_file, existing, results_path  # noqa: E402

FILES = ("hotpot_distractor_dev100.jsonl", "hotpot_retrieved_500.jsonl")
CACHE = ROOT / ".ragpress" / "bench"
MODES = ("dense", "lexical", "hybrid")


def load(paths: list[Path]) -> tuple[list[dict], list[tuple[str, str]]]:
    rows = []
    for path in paths:
        for line in existing(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(dict(json.loads(line), file=path.name))
    seen: dict[tuple[str, str], None] = {}
    for row in rows:
        for title, sents in row["context"]:
            seen.setdefault((title, " ".join(s.strip() for s in sents)), None)
    return rows, list(seen)


def embed_cached(embedder, texts: list[str], tag: str, need: set[int] | None = None,
                 part: int = 256) -> tuple[dict[int, "object"], float]:
    """Vectors (index -> vector) of the texts in ``need`` (all when None), and the
    measured chunks per CPU-second of one thread (wall time would measure the
    neighbours on a shared machine). Cached on disk by content, in parts of
    ``part`` texts, so an interrupted run resumes and a partial run is reused."""
    import numpy as np

    key = hashlib.sha256(("\x00".join(texts) + embedder.name).encode()).hexdigest()[:16]
    folder = CACHE / f"{tag}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[int, object] = {}
    count, cpu = 0, 0.0
    for k in range(0, len(texts), part):
        span = range(k, min(k + part, len(texts)))
        path = folder / f"{k:07d}.npz"
        if need is not None and not need.intersection(span) and not path.exists():
            continue
        if not path.exists():
            started = time.process_time()
            vectors = embedder.embed(texts[span.start:span.stop])
            np.savez(path, vectors=vectors, cpu_s=time.process_time() - started)
            print(f"embedded {span.stop}/{len(texts)}", flush=True)
        with np.load(path) as z:
            out.update(zip(span, z["vectors"]))
            count += len(span)
            cpu += float(z["cpu_s"])
    return out, count / cpu


class Precomputed:
    """An embedder that answers from a table of known vectors, else from the model."""

    def __init__(self, model, table: dict[str, "object"], chunker=None) -> None:
        self.model = model
        self.table = table
        self.name = f"precomputed:{model.name}"
        # Chunk with MiniLM's tokenizer whatever the vectors, so every run chunks alike.
        chunker = chunker or model
        self.max_tokens = getattr(chunker, "max_tokens", 254)
        self.token_spans = chunker.token_spans

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


def synthetic(corpus, vectors, table: dict, seed: int = 7):
    """Corpus paragraphs first, then synthetic documents without end (see the module
    docstring); each one's vector goes into ``table`` as it is made."""
    import numpy as np

    from middleware.types import Document

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    for d, v in zip(documents(corpus), vectors):
        table[f"{d.title}\n{d.text}"] = v
        yield d
    k = 0
    while True:
        i, j = rng.randrange(len(corpus)), rng.randrange(len(corpus))
        text = f"{corpus[i][1]} {rng.choice(corpus[j][1].split('. ')).strip()}"
        d = Document(id=f"s{k}", title=corpus[i][0], text=text)
        v = vectors[i] + noise.normal(0.0, 0.05, vectors.shape[1]).astype(np.float32)
        table[f"{d.title}\n{d.text}"] = v / np.linalg.norm(v)
        k += 1
        yield d


def scale_run(model, chunker, corpus, vectors, n: int, queries: list[str], batch: int = 1000) -> dict:
    """Index documents until the collection holds at least ``n`` chunks."""
    from itertools import islice

    from retrievers import Collection, Query

    table: dict = {}
    emb = Precomputed(model, table, chunker)
    source = synthetic(corpus, vectors, table)
    with tempfile.TemporaryDirectory() as tmp:
        coll = Collection(f"scale{n}", emb, folder=Path(tmp))
        index_s = 0.0
        while coll.chunk_count < n:
            docs = list(islice(source, batch))  # made (and their vectors looked up) outside the timing
            started = time.perf_counter()
            coll.upsert(docs)
            index_s += time.perf_counter() - started
        started = time.perf_counter()
        coll.retrieve(Query("warm", mode="lexical"))  # builds BM25
        bm25_s = time.perf_counter() - started
        started = time.perf_counter()
        path = coll.save()
        save_s = time.perf_counter() - started
        size = path.stat().st_size
        row = {"documents": len(coll), "chunks": coll.chunk_count, "index_build_s": round(index_s, 2),
               "bm25_build_s": round(bm25_s, 2), "save_s": round(save_s, 2), "file_mb": round(size / 2**20, 1),
               "faiss_mb": round(coll.chunk_count * vectors.shape[1] * 4 / 2**20, 1)}
        emb.embed(queries)  # into the table: the latency below is the index's alone
        for mode in MODES:
            row[mode] = latency(coll, queries, mode)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries-at-scale", type=int, default=50)
    ap.add_argument("--minilm-full", action="store_true",
                    help="embed the whole corpus with MiniLM (about 40 CPU-minutes here), not only dev100's paragraphs")
    ap.add_argument("--data", action="append", default=None,
                    help="a file in the HotpotQA row format, repeatable; its paragraphs form the corpus and its "
                         "questions are asked (default: both $RAGPRESS_DATA/hotpotqa files)")
    ap.add_argument("--out", default=None, help="results JSON (default: bench/results/retrieval.json; "
                                                "retrieval.subset.json with --data)")
    args = ap.parse_args()
    paths = [Path(p) for p in args.data] if args.data else [data_file("hotpotqa", name) for name in FILES]

    from middleware.offline import configure_offline

    configure_offline()
    import torch

    from middleware.embedders import load_embedder
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    # One thread: on a shared, overloaded 2-core machine a second thread mostly waits.
    torch.set_num_threads(int(os.environ.get("RAGPRESS_BENCH_THREADS", "1")))
    rows, corpus = load(paths)
    texts = [f"{t}\n{x}" for t, x in corpus]
    position = {c: i for i, c in enumerate(corpus)}
    dev_idx = {position[(t, " ".join(s.strip() for s in ss))] for r in rows if r["file"] == paths[0].name
               for t, ss in r["context"]}
    minilm = load_embedder("")
    static = ModelRegistry(Settings()).static_embedder()
    minilm_vecs, minilm_rate = embed_cached(minilm, texts, "corpus", None if args.minilm_full else dev_idx)
    started = time.process_time()
    static_all = static.embed(texts)
    static_rate = len(texts) / (time.process_time() - started)
    vectors = {"minilm": minilm_vecs, "static": dict(enumerate(static_all))}
    print(f"corpus: {len(corpus)} paragraphs ({len(dev_idx)} from dev100), {len(rows)} questions; "
          f"MiniLM {minilm_rate:.1f} chunks/CPU-s on {len(minilm_vecs)} paragraphs; static {static_rate:.0f}")

    questions = []
    for row in rows:
        gold = {t for t, _ in row["supporting_facts"]}
        questions.append({"question": row["question"], "gold": gold, "file": row["file"]})
    corpora = {"dev100": (sorted(dev_idx), [q for q in questions if q["file"] == paths[0].name]),
               "all": (list(range(len(corpus))),
                       [q for q in questions if q["gold"] and q["gold"] <= {t for t, _ in corpus}])}

    results = {"corpus_paragraphs": len(corpus), "dev100_paragraphs": len(dev_idx),
               "questions": {name: len(qs) for name, (_, qs) in corpora.items()},
               "embedding_chunks_per_cpu_s": {"minilm": round(minilm_rate, 1), "static": round(static_rate, 1)},
               "query_embedding_ms": {}, "recall": {}, "latency_corpus": {}, "scale": [],
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg()[0]}}
    for name, emb in (("minilm", minilm), ("static", static)):
        qtimes = []
        for q in questions[:50]:
            started = time.perf_counter()
            emb.embed([q["question"] + " "])  # a trailing space dodges the text cache
            qtimes.append((time.perf_counter() - started) * 1000.0)
        qtimes.sort()
        results["query_embedding_ms"][name] = {"p50_ms": round(qtimes[len(qtimes) // 2], 2),
                                               "p95_ms": round(qtimes[int(len(qtimes) * 0.95) - 1], 2)}
    query_vectors = {"minilm": minilm.embed([q["question"] for q in questions]),
                     "static": static.embed([q["question"] for q in questions])}

    from retrievers import Collection

    all_docs = documents(corpus)
    title_of = {d.id: d.title for d in all_docs}
    for cname, (idx, qs) in corpora.items():
        for ename, emb in (("minilm", minilm), ("static", static)):
            if not all(i in vectors[ename] for i in idx):
                continue  # MiniLM covers only dev100's paragraphs unless --minilm-full
            table = {texts[i]: vectors[ename][i] for i in idx}
            table.update(zip((q["question"] for q in questions), query_vectors[ename]))
            coll = Collection(f"{cname}-{ename}", Precomputed(emb, table, minilm))
            coll.upsert([all_docs[i] for i in idx])
            for mode in MODES:
                if mode == "lexical" and ename != "static":
                    continue  # BM25 does not depend on the embedder
                label = mode if mode == "lexical" else f"{mode} ({ename})"
                results["recall"].setdefault(cname, {})[label] = recall(coll, qs, title_of, mode)
                if cname == "all":
                    results["latency_corpus"][label] = latency(coll, [q["question"] for q in qs[:200]], mode)
                print(cname, label, results["recall"][cname][label], flush=True)

    scale_queries = [q["question"] for q in questions[: args.queries_at_scale]]
    for n in (int(v) for v in args.sizes.split(",") if v):
        row = scale_run(static, minilm, corpus, static_all, n, scale_queries)
        row["embedding_s_extrapolated"] = {"minilm": round(row["chunks"] / minilm_rate, 1),
                                           "static": round(row["chunks"] / static_rate, 1)}
        results["scale"].append(row)
        print(row, flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = results_path("retrieval", subset=args.data is not None, out=args.out)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)


def print_table(r: dict) -> None:
    q = r["questions"]
    print(f"\nRecall of gold paragraphs: corpus 'all' = {r['corpus_paragraphs']} paragraphs of both files, "
          f"{q['all']} questions; 'dev100' = the {r['dev100_paragraphs']} paragraphs of the distractor file, "
          f"{q['dev100']} questions")
    print("| corpus | mode (embedder) | R@5 | R@10 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for cname, modes in r["recall"].items():
        for label, rec in modes.items():
            lat = r["latency_corpus"].get(label, {}) if cname == "all" else {}
            print(f"| {cname} | {label} | {rec['recall@5']:.3f} | {rec['recall@10']:.3f} | "
                  f"{lat.get('p50_ms', '-')} | {lat.get('p95_ms', '-')} |")
    e = r["embedding_chunks_per_cpu_s"]
    print("\nQuery embedding, one query: " + "; ".join(
        f"{k} p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms" for k, v in r["query_embedding_ms"].items())
        + f". Passages: MiniLM {e['minilm']} and static {e['static']} chunks per CPU-second (one thread).")
    print("\n| chunks | index build s | BM25 build s | save s | file MB | FAISS MB | MiniLM embedding s "
          "(extrapolated) | dense p50 / p95 ms | lexical p50 / p95 ms | hybrid p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in r["scale"]:
        lat = " | ".join(f"{s[m]['p50_ms']} / {s[m]['p95_ms']}" for m in MODES)
        print(f"| {s['chunks']} | {s['index_build_s']} | {s['bm25_build_s']} | {s['save_s']} | {s['file_mb']} | "
              f"{s['faiss_mb']} | {s['embedding_s_extrapolated']['minilm']} | {lat} |")


if __name__ == "__main__":
    main()
