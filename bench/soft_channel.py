"""What the soft-token projector's lexical channel weighs a window's tokens by.

    .venv/bin/python bench/soft_channel.py [--projector PATH] [--data PATH ...] [--questions 50]

The channel gives each soft token ``j`` of a window a mixture of the window's token
embeddings, with weights ``softmax_t(q_j(e) . E[x_t] / 24 + alpha_j * idf[x_t])``
(``compressors/projector.py``). This measures, over every window of the gold passages of
the first ``--questions`` questions of each file (vectors from the service's int8 ONNX
MiniLM, as a request reads them), how much each of the two terms moves those weights:

- the spread (standard deviation over a window's tokens) of the query term and of the
  idf term, in nats (median over windows);
- the total-variation distance between the weights with and without the query term
  (0: the query changes nothing; 1: it moves all the weight), and the same without the
  idf term;
- how peaked the weights are: their entropy over ``log(tokens)`` (1: a plain average);
- the channel's share of the soft token: ``|gain_j * mixture| / |vector part|``.

The data folder is ``$RAGPRESS_DATA`` (default ``../shared/data`` beside the repository).
Prints a table and writes ``bench/results/soft_channel.json`` (``.subset.json`` for other
data, other weights or another number of questions).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import datapaths  # noqa: E402

DEFAULT_FILES = ("hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl")


def _softmax(s):
    import numpy as np

    s = np.exp(s - s.max())
    return s / s.sum()


def window_figures(c, w, lexicon, vector, text: str) -> list[dict] | None:
    """Per soft token of one window: the two terms' spreads, what each moves, peakedness, and the
    channel's norm. ``c`` is the projector's config, ``w`` its weights (read once by the caller)."""
    import numpy as np

    from compressors.projector import LEXICAL_TEMPERATURE, token_rows

    ids = token_rows(lexicon.tokenizer, [text], c.lexical_tokens)[0]
    ids = ids[(ids >= 0) & (ids < len(lexicon.table))]
    if len(ids) < 2:
        return None
    emb = lexicon.table[ids]
    e = np.asarray(vector, dtype=np.float32)
    q = (w["w_q"] @ e + w["b_q"]).reshape(c.k, c.out_dim)
    out = []
    for j in range(c.k):
        query = q[j] @ emb.T / LEXICAL_TEMPERATURE
        rarity = w["alpha"][j] * w["idf"][ids]
        both, no_query, no_idf = _softmax(query + rarity), _softmax(rarity), _softmax(query)
        entropy = float(-(both * np.log(both + 1e-12)).sum() / np.log(len(ids)))
        out.append({"query_spread": float(query.std()), "idf_spread": float(rarity.std()),
                    "query_moves": float(0.5 * np.abs(both - no_query).sum()),
                    "idf_moves": float(0.5 * np.abs(both - no_idf).sum()), "entropy": entropy,
                    "mixture_norm": float(np.linalg.norm(w["gain"][j] * (both @ emb)))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projector", default=None, help="weights file (default: the shipped projector)")
    ap.add_argument("--data", action="append", help="a file in the HotpotQA row format (repeatable; default: "
                    "both dev files)")
    ap.add_argument("--questions", type=int, default=50, help="questions read from each file")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from middleware.offline import configure_offline

    configure_offline()
    import os

    import numpy as np

    from compressors.projector import DEFAULT_PATH, WEIGHTS, Lexicon, Projector, encoder_texts
    from compressors.soft_data import qa_example
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    projector = Projector.load(Path(args.projector) if args.projector else DEFAULT_PATH)
    c = projector.config
    if not c.lexical_tokens:
        raise SystemExit("this projector has no lexical channel (lexical_tokens 0)")
    models = ModelRegistry(Settings.load(None, os.environ))
    embedder = models.onnx_embedder()
    lexicon = Lexicon.of(models.local_runtime(f"local/{c.model}").model)
    w = projector.weights()
    # The same weights without the channel: the vector's part of each soft token.
    vector_only = Projector(replace(c, lexical_tokens=0), {n: w[n] for n in WEIGHTS})
    files = [datapaths.resolve(f) for f in (args.data or DEFAULT_FILES)]
    results = []
    for path in files:
        examples = [e for e in (qa_example(r) for r in datapaths.read_rows(path)) if e is not None][: args.questions]
        texts = [t for e in examples for p in e.passages for t in encoder_texts(p.title, p.text, c.chunk_words,
                                                                                   c.chunking)]
        vectors = embedder.embed(texts)
        bases = np.linalg.norm(vector_only.project(vectors), axis=2)  # (windows, k)
        slots: list[list[dict]] = [[] for _ in range(c.k)]
        for vector, text, base in zip(vectors, texts, bases):
            figures = window_figures(c, w, lexicon, vector, text)
            for j, f in enumerate(figures or []):
                slots[j].append({**f, "share": f["mixture_norm"] / float(base[j])})
        results.append({"file": path.name, "questions": len(examples), "windows": len(texts), "slots": [
            {key: round(statistics.median(f[key] for f in fs), 4) for key in
             ("query_spread", "idf_spread", "query_moves", "idf_moves", "entropy", "share")} for fs in slots]})

    print(f"alpha {[round(float(x), 3) for x in w['alpha']]}, gain {[round(float(x), 3) for x in w['gain']]} "
          "(figures: medians over windows)")
    print("| file | soft token | query spread (nats) | idf spread (nats) | weight the query moves | weight idf moves "
          "| entropy / log(tokens) | channel / vector part |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for j, s in enumerate(r["slots"]):
            print(f"| {r['file']} ({r['windows']} windows) | {j + 1} | {s['query_spread']:.3f} | {s['idf_spread']:.3f} "
                  f"| {s['query_moves']:.3f} | {s['idf_moves']:.3f} | {s['entropy']:.3f} | {s['share']:.2f} |")
    subset = bool(args.data or args.projector or args.questions != 50)
    out = datapaths.results_path("soft_channel", subset, args.out)
    out.write_text(json.dumps({"command": "python bench/soft_channel.py " + " ".join(sys.argv[1:]),
                               "alpha": [round(float(x), 4) for x in w["alpha"]],
                               "gain": [round(float(x), 4) for x in w["gain"]],
                               "results": results}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
