"""Which MiniLM build reads the chunks for method ``soft``: the torch model or its int8 ONNX build.

    .venv/bin/python bench/soft_encoders.py [--projector PATH] [--timing-data PATH] [--timing-questions 10]

The projector is trained on the torch MiniLM's vectors; the service reads chunks with
the int8 ONNX build (its fast embedder). Two measures, in one run:

- **the projector's held-out figure with each build**: the gap closed (teacher-forced
  answer NLL, as ``ragpress train-projector`` reports it) on the held-out tenth of the
  training questions (``compressors.soft_data.held_out``; never the dev files), with the
  chunks' vectors from each build, and the control (another question's soft tokens);
- **encoding time** of every chunk of a question's passages (all of them: 10 in
  HotpotQA, 20 in NQ), each build's cache cleared first, median over
  ``--timing-questions`` questions of ``--timing-data``; and the cosine between the two
  builds' vectors of the same chunk.

The data folder is ``$RAGPRESS_DATA`` (default ``../shared/data`` beside the repository).
Prints a table and writes ``bench/results/soft_encoders.json`` (``.subset.json`` for
other data or fewer questions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import datapaths  # noqa: E402

TIMING_FILE = "hotpotqa/hotpot_distractor_dev100.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projector", default=None, help="weights file (default: the shipped projector)")
    ap.add_argument("--train-data", action="append", help="training files whose held-out fold is scored "
                    "(default: the two files the projector is trained on)")
    ap.add_argument("--timing-data", default=TIMING_FILE, help="file whose questions' passages are encoded")
    ap.add_argument("--timing-questions", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from middleware.offline import configure_offline

    configure_offline()
    import numpy as np
    import torch

    from compressors.projector import DEFAULT_PATH, Projector, encoder_texts, input_table, token_rows
    from compressors.soft_data import held_out, passages_of, qa_examples, read_rows
    from compressors.soft_forcing import Forcer
    from compressors.soft_recipe import held_out_scores, passages_context, text_nll
    from compressors.soft_training import Item, torch_twin
    from middleware.generation import prompt as prompts
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    torch.set_num_threads(args.threads)
    projector = Projector.load(Path(args.projector) if args.projector else DEFAULT_PATH)
    c = projector.config
    models = ModelRegistry(Settings.load(None, os.environ))
    builds = {"torch": models.embedder(), "onnx-int8": models.onnx_embedder()}
    local = models.local_runtime("local/smollm2").model
    forcer = Forcer(local, prompts.default_messages, 16)
    table = input_table(local.model) if c.lexical_tokens else None
    module = torch_twin(projector, table)

    from middleware.cli.train_projector import DEFAULT_FILES  # what the projector is trained on

    train_files = [datapaths.resolve(f) for f in (args.train_data or DEFAULT_FILES)]
    tests = [e for e in qa_examples(r for f in train_files for r in read_rows(f)) if held_out(e.id)]
    texts = lambda ps: [t for p in ps for t in encoder_texts(p.title, p.text, c.chunk_words, c.chunking)]  # noqa: E731
    none = full = None
    held: dict[str, dict] = {}
    for name, embedder in builds.items():
        items = [Item(e.question, embedder.embed(texts(e.passages)), forcer.answer_ids(e.answer, False),
                      token_rows(forcer.tok, texts(e.passages), c.lexical_tokens) if c.lexical_tokens else None)
                 for e in tests]
        counts = sum(len(it.target) for it in items)
        if none is None:
            none = sum(text_nll(forcer, tests, [""] * len(tests))) / counts
            full = sum(text_nll(forcer, tests, [passages_context(e) for e in tests])) / counts
        scores = held_out_scores(forcer, module, items, c.k, none, full)
        held[name] = {"nll_per_token": round(scores["soft"], 4), "gap_closed": round(scores["gap_closed"], 4),
                      "control_gap_closed": round((none - scores["shuffled_soft"]) / (none - full), 4)}

    timing_rows = list(read_rows(datapaths.resolve(args.timing_data)))[: args.timing_questions]
    times: dict[str, list[float]] = {name: [] for name in builds}
    cosines, chunk_counts = [], []
    for row in timing_rows:
        chunk_texts = texts(passages_of(row))
        chunk_counts.append(len(chunk_texts))
        vectors = {}
        for name, embedder in builds.items():
            embedder.clear_cache()
            started = time.perf_counter()
            vectors[name] = embedder.embed(chunk_texts)
            times[name].append((time.perf_counter() - started) * 1000.0)
        a, b = vectors["torch"], vectors["onnx-int8"]
        cosines.extend((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    timing = {name: round(statistics.median(ts), 1) for name, ts in times.items()}

    print(f"held-out training questions: {len(tests)}; NLL/token none {none:.4f}, full {full:.4f}")
    print("| chunk encoder | gap closed | another question's tokens | encode all passages, p50 ms |")
    print("|---|---|---|---|")
    for name in builds:
        print(f"| {name} | {held[name]['gap_closed']:.3f} | {held[name]['control_gap_closed']:.3f} | {timing[name]} |")
    print(f"{statistics.fmean(chunk_counts):.1f} chunks a question ({Path(args.timing_data).name}); cosine between "
          f"the builds' vectors: mean {float(np.mean(cosines)):.3f}, min {float(np.min(cosines)):.3f}")
    subset = bool(args.train_data or args.timing_data != TIMING_FILE or args.timing_questions != 10
                  or args.projector)
    out = datapaths.results_path("soft_encoders", subset, args.out)
    out.write_text(json.dumps({
        "command": "python bench/soft_encoders.py " + " ".join(sys.argv[1:]), "threads": args.threads,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "held_out": {"questions": len(tests), "none_nll_per_token": round(none, 4),
                     "full_nll_per_token": round(full, 4), **held},
        "encode_all_passages_ms_p50": timing, "timing_file": Path(args.timing_data).name,
        "timing_questions": len(timing_rows), "chunks_per_question": round(statistics.fmean(chunk_counts), 1),
        "cosine_mean": round(float(np.mean(cosines)), 4), "cosine_min": round(float(np.min(cosines)), 4)},
        indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
