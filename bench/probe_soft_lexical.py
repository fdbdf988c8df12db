"""Would the soft-token projector carry more of a passage if it also read the window's own tokens?

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/probe_soft_lexical.py [--seed 0] [--cache-dir DIR]

A probe, not a method (training files only; never the dev files). It runs the shipped
recipe of ``ragpress train-projector`` (same data, same stages, same seed, same held-out
fold) with one change: beside the projector, a small attention pooler reads the window's
first 64 SmolLM2 tokens (``"{title}\\n{window}"``) and adds, to each of the k soft tokens,
a learned-gain weighted mean of those tokens' own input embeddings (the LM's frozen table).
The weights of the mean are a softmax over ``q_j(e) . E_t / 24 + alpha_j * idf_t``: ``q_j``
is linear in the window's MiniLM vector ``e`` (starting at zero), ``idf`` is the inverse
document frequency of each LM token over the training passages (held-out questions'
passages left out), ``alpha_j`` starts at 2 and the gain at 0.5. The idea: entity names,
which a mean-pooled MiniLM vector does not spell, reach the LM as (mixtures of) their own
token embeddings. Everything else (ridge start, reconstruction, question answering,
held-out scoring) is the recipe's own code, reached through two substitutions.

Writes bench/results/probe_soft_lexical.json (``_seedN`` for another seed; or --out): the
held-out figures after each stage, to set beside the shipped projector's (``compressors/data/SOFT_PROJECTOR.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from datapaths import data_file, resolve, results_path  # noqa: E402

TOKENS = 64  # a window's first LM tokens the pooler reads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="training file in the HotpotQA row format (repeatable; "
                    "default: the HotpotQA and NQ training files)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recon-steps", type=int, default=500, help="the recipe's (a smaller value: a smoke run)")
    ap.add_argument("--qa-steps", type=int, default=300, help="the recipe's (a smaller value: a smoke run)")
    ap.add_argument("--cache-dir", default="/tmp/ragpress-probe-soft-lexical",
                    help="encoder vectors and text NLLs (the same files train-projector caches)")
    ap.add_argument("--out", default=None,
                    help="results file (default: bench/results/probe_soft_lexical[_seedN].json)")
    args = ap.parse_args()

    import torch

    from middleware.offline import configure_offline

    configure_offline()
    torch.set_num_threads(args.threads)
    import compressors.soft_recipe as recipe
    from compressors.projector import document_text
    from compressors.soft_data import distinct_passages, held_out, read_rows
    from compressors.soft_training import TrainConfig, VectorCache, ridge_init, torch_projector
    from middleware.generation import prompt as prompts
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    defaults = (data_file("hotpotqa", "hotpot_retrieved_500.jsonl"), data_file("nq", "nq_hybrid_train.jsonl"))
    files = [resolve(f) for f in (args.data or defaults)]
    models = ModelRegistry(Settings.load(None, os.environ))
    local = models.local_runtime("local/smollm2").model
    tok = local.tokenizer
    table = local.model.get_input_embeddings().weight.detach().float().clone()
    rows = [r for f in files for r in read_rows(f)]
    df, docs = np.zeros(len(table)), 0
    for p in distinct_passages(r for r in rows if not held_out(str(r.get("id", "")))):
        docs += 1
        for i in set(tok(document_text(p.title, p.text), add_special_tokens=False)["input_ids"]):
            df[i] += 1
    idf = torch.from_numpy(np.log((docs + 1) / (df + 1))).float()

    plain_vectors = VectorCache.vectors

    def with_tokens(self, passages, progress=None):
        """The MiniLM vector followed by the window's first TOKENS LM ids (-1 pads), one row each."""
        vecs = plain_vectors(self, passages, progress)
        ids = np.full((len(passages), TOKENS), -1, dtype=np.float32)
        for i, u in enumerate(passages):
            t = tok(document_text(u.title, u.text), add_special_tokens=False)["input_ids"][:TOKENS]
            ids[i, :len(t)] = t
        return np.concatenate([vecs, ids], axis=1)

    class Lexical(torch.nn.Module):
        def __init__(self, config, seed: int) -> None:
            super().__init__()
            self.c = config
            self.base = torch_projector(config, seed)
            self.wq = torch.nn.Parameter(torch.zeros(config.k * config.out_dim, config.in_dim))
            self.bq = torch.nn.Parameter(torch.zeros(config.k * config.out_dim))
            # alpha and gain are stored at a tenth (x10 below): Adam moves them ten times faster
            self.alpha = torch.nn.Parameter(torch.full((config.k,), 0.2))
            self.gain = torch.nn.Parameter(torch.full((config.k,), 0.05))

        def forward(self, x):
            c = self.c
            e, ids = x[:, :c.in_dim], x[:, c.in_dim:].long()
            mask, ids = ids >= 0, ids.clamp(min=0)
            emb = table[ids]
            q = (e @ self.wq.T + self.bq).view(-1, c.k, c.out_dim)
            s = torch.einsum("nkd,ntd->nkt", q, emb) / 24.0 + 10.0 * self.alpha[None, :, None] * idf[ids][:, None, :]
            s = s.masked_fill(~mask[:, None, :], -1e9)
            pooled = torch.einsum("nkt,ntd->nkd", s.softmax(-1), emb)
            return self.base(e) + 10.0 * self.gain[None, :, None] * pooled

        def export(self):
            return None  # a probe: its figures are the result, not its weights

    modules: list = []

    def build(config, seed):
        # the recipe sizes the projector from the rows with_tokens gives: the vector's width is the rest
        modules.append(Lexical(replace(config, in_dim=config.in_dim - TOKENS), seed))
        return modules[-1]

    VectorCache.vectors = with_tokens
    recipe.torch_projector = build
    recipe.ridge_init = lambda module, forcer, passages, vecs, config: ridge_init(
        module.base, forcer, passages, vecs[:, :-TOKENS], config)
    cache = Path(args.cache_dir)
    started = time.perf_counter()
    config = TrainConfig(seed=args.seed, recon_steps=args.recon_steps, qa_steps=args.qa_steps)
    run = recipe.train(local, models.embedder(), prompts.default_messages, files, config,
                       cache_dir=cache, log_path=cache / f"probe-soft-lexical-seed{args.seed}.log.jsonl")
    held = run.metadata["held_out_nll_per_token"]
    gap = held["none"] - held["full"]
    rows_out = {}
    for stage in ("ridge", "reconstruction", "qa"):
        st = held[stage]
        control = (held["none"] - st["shuffled_soft"]) / gap
        rows_out[stage] = {"gap_closed": round(st["gap_closed"], 4), "control": round(control, 4),
                           "passage_adds": round(st["gap_closed"] - control, 4)}
    m = modules[-1]
    result = {"command": "python bench/probe_soft_lexical.py " + " ".join(sys.argv[1:]), "seed": args.seed,
              "files": [f.name for f in files], "held_out_questions": held["questions"],
              "held_out_nll_per_token": held, "stages": rows_out,
              "gain": [round(float(g) * 10, 4) for g in m.gain.detach()],
              "alpha": [round(float(a) * 10, 4) for a in m.alpha.detach()],
              "wall_seconds": round(time.perf_counter() - started, 1)}
    print("| stage | gap closed | control | what the passage adds |\n|---|---|---|---|")
    for stage, r in rows_out.items():
        print(f"| {stage} | {r['gap_closed']:.3f} | {r['control']:.3f} | {r['passage_adds']:.3f} |")
    subset = (args.recon_steps, args.qa_steps, args.data) != (500, 300, None)
    out = results_path("probe_soft_lexical" + (f"_seed{args.seed}" if args.seed else ""), subset, args.out)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
