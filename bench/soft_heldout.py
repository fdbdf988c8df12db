"""Soft-token projectors on the held-out training questions, with and without other retrieved passages.

    .venv/bin/python bench/soft_heldout.py [--projector PATH ...] [--distractors 0 1 3] [--cache-dir DIR]

The instrument for *choosing* a projector recipe: it reads only the held-out tenth of the
training files' questions (``compressors.soft_data.held_out``, never trained on; never the
dev files). Each question is asked with the soft tokens of its gold passages plus ``d`` of
its own row's other passages (what a retriever brought beside them; drawn and shuffled in
with ``compressors.soft_data.with_distractors``, fixed per question), for each ``d`` of
``--distractors``; ``d = 0`` is the figure ``ragpress train-projector`` saves. A user
compresses everything retrieved, not the gold passages alone, and a multi-hop question's
dev rows put the answer in one of two passages: ``d > 0`` measures whether the projector
still finds it.

Figures per training file and for the questions with two or more gold passages: answer NLL
per token (teacher-forced, as in training) with no context, the gold passages in full, the
same passages plus the distractors in full, and each projector's soft tokens; gap closed =
(NLL none - NLL soft) / (NLL none - NLL gold in full), the same yardstick for every ``d``.
Vectors come from the torch MiniLM (as in training), cached in ``--cache-dir`` (by default
where ``ragpress train-projector`` caches them).

The data folder is ``$RAGPRESS_DATA`` (default ``../shared/data`` beside the repository).
Prints a table and writes ``bench/results/soft_heldout.json`` (``.subset.json`` for other
projectors, data or distractor counts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import datapaths  # noqa: E402

DISTRACTORS = (0, 1, 3)


def groups(examples: list, files: list[str]) -> dict[str, list[int]]:
    """Indices of the examples by training file, and of those with two or more gold passages."""
    out: dict[str, list[int]] = {"all": list(range(len(examples)))}
    for name in dict.fromkeys(files):
        out[name] = [i for i, f in enumerate(files) if f == name]
    out["two or more gold passages"] = [i for i, e in enumerate(examples) if len(e.passages) >= 2]
    return out


def per_token(values: list[float], counts: list[int], idx: list[int]) -> float:
    return sum(values[i] for i in idx) / max(1, sum(counts[i] for i in idx))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projector", action="append", help="weights file (repeatable; default: the shipped projector)")
    ap.add_argument("--train-data", action="append", help="training files whose held-out fold is scored "
                    "(default: the two files the projector is trained on)")
    ap.add_argument("--distractors", type=int, nargs="+", default=list(DISTRACTORS))
    ap.add_argument("--cache-dir", default=None, help="where the MiniLM vectors are cached (default: where "
                    "ragpress train-projector caches them, cache_dir/soft-training)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from middleware.offline import configure_offline

    configure_offline()
    import torch

    from compressors.projector import DEFAULT_PATH, Projector, chunks, document_text, input_table, token_rows
    from compressors.soft_data import Passage, held_out, qa_example, read_rows, with_distractors
    from compressors.soft_forcing import Forcer
    from compressors.soft_recipe import next_items_passages, passages_context, text_nll
    from compressors.soft_training import Item, VectorCache, soft_nll, torch_twin
    from middleware.cli.train_projector import DEFAULT_FILES
    from middleware.generation import prompt as prompts
    from middleware.models import ModelRegistry
    from middleware.settings import Settings

    torch.set_num_threads(args.threads)
    paths = [Path(p) for p in args.projector] if args.projector else [DEFAULT_PATH]
    projectors = [Projector.load(p) for p in paths]
    settings = Settings.load(None, os.environ)
    models = ModelRegistry(settings)
    local = models.local_runtime("local/smollm2").model
    forcer = Forcer(local, prompts.default_messages, 16)
    table = input_table(local.model) if any(p.config.lexical_tokens for p in projectors) else None
    modules = [torch_twin(p, table if p.config.lexical_tokens else None) for p in projectors]
    cache = VectorCache(models.embedder(), Path(args.cache_dir) if args.cache_dir
                        else settings.resolved_cache_dir() / "soft-training")

    files = [datapaths.resolve(f) for f in (args.train_data or DEFAULT_FILES)]
    pairs = [(f.name, row) for f in files for row in read_rows(f)]
    held = [(name, row, e) for name, row in pairs if (e := qa_example(row)) is not None and held_out(e.id)]
    examples, names = [e for _, _, e in held], [n for n, _, _ in held]
    targets = [forcer.answer_ids(e.answer, False) for e in examples]
    counts = [len(t) for t in targets]
    memo: dict[str, float] = {}  # prompt digest -> NLL: gold + 0 in full is the gold passages in full
    none = text_nll(forcer, examples, [""] * len(examples), memo=memo)
    gold_full = text_nll(forcer, examples, [passages_context(e) for e in examples], memo=memo)
    sets = groups(examples, names)
    results: dict = {"questions": len(examples), "groups": {g: len(i) for g, i in sets.items()},
                     "none": {g: per_token(none, counts, i) for g, i in sets.items()},
                     "gold_full": {g: per_token(gold_full, counts, i) for g, i in sets.items()},
                     "by_distractors": {}}
    labels = [p.name if [q.name for q in paths].count(p.name) == 1 else f"{p.parent.name}/{p.name}" for p in paths]
    gap = lambda x, g: (results["none"][g] - x) / (results["none"][g] - results["gold_full"][g])  # noqa: E731
    for d in args.distractors:
        mixed = [with_distractors(e, row, d) for _, row, e in held]
        full = text_nll(forcer, mixed, [passages_context(e) for e in mixed], memo=memo)
        entry: dict = {"full": {g: per_token(full, counts, i) for g, i in sets.items()}, "projectors": {}}
        for label, path, projector, module in zip(labels, paths, projectors, modules):
            c = projector.config
            units = [[Passage(p.title, t) for p in e.passages for t in chunks(p.text, c.chunk_words, c.chunking)]
                     for e in mixed]
            cache.vectors([u for us in units for u in us])  # one encoding pass for the uncached
            items = [Item(e.question, cache.vectors(us), t,
                          token_rows(forcer.tok, [document_text(u.title, u.text) for u in us], c.lexical_tokens)
                          if c.lexical_tokens else None)
                     for e, us, t in zip(mixed, units, targets)]
            soft = soft_nll(forcer, module, items, c.k)
            control = soft_nll(forcer, module, next_items_passages(items), c.k)
            figures = {name: {g: per_token(v, counts, i) for g, i in sets.items()}
                       for name, v in (("soft", soft), ("control", control))}
            entry["projectors"][label] = {
                "path": str(path),
                "soft_tokens_mean": round(c.k * sum(len(it.vectors) for it in items) / len(items), 2), **figures,
                "gap_closed": {g: round(gap(x, g), 4) for g, x in figures["soft"].items()},
                "control_gap_closed": {g: round(gap(x, g), 4) for g, x in figures["control"].items()}}
        results["by_distractors"][str(d)] = entry

    print(f"held-out training questions: {len(examples)} ({', '.join(f'{g}: {len(i)}' for g, i in sets.items())})")
    print("gap closed (another question's soft tokens, the control, in brackets)")
    print("| passages | context | " + " | ".join(sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for d, entry in results["by_distractors"].items():
        print(f"| gold + {d} | all in full | " + " | ".join(f"{gap(entry['full'][g], g):.3f}" for g in sets) + " |")
        for label, fig in entry["projectors"].items():
            cells = " | ".join(f"{fig['gap_closed'][g]:.3f} ({fig['control_gap_closed'][g]:.3f})" for g in sets)
            print(f"| gold + {d} | soft tokens, {label} ({fig['soft_tokens_mean']} a question) | {cells} |")
    subset = bool(args.projector or args.train_data or tuple(args.distractors) != DISTRACTORS)
    out = datapaths.results_path("soft_heldout", subset, args.out)
    out.write_text(json.dumps({"command": "python bench/soft_heldout.py " + " ".join(sys.argv[1:]),
                               "threads": args.threads, "projectors": dict(zip(labels, map(str, paths))),
                               "load_average_end": [round(x, 2) for x in os.getloadavg()], **results}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
