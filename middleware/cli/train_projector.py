"""``ragpress train-projector``: train the soft-token projector (method ``soft``) on local data.

With no arguments it reproduces the shipped projector (``compressors/data/soft_projector.npz``):
the HotpotQA training file and the NQ training file under ``$RAGPRESS_DATA`` (default:
``../shared/data`` beside the repository), seed 0, one torch thread. Dev files are refused.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from middleware.cli import common
from middleware.errors import InvalidArgument

DEFAULT_FILES = ("hotpotqa/hotpot_retrieved_500.jsonl", "nq/nq_hybrid_train.jsonl")
REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """``$RAGPRESS_DATA``, or ``../shared/data`` beside the repository root."""
    root = Path(os.environ.get("RAGPRESS_DATA") or REPO.parent / "shared" / "data")
    if not root.is_dir():
        raise InvalidArgument(f"data folder {root} does not exist: set RAGPRESS_DATA to the folder that holds "
                              "hotpotqa/ and nq/, or pass --data FILE")
    return root


def training_files(given: list[str] | None, allow_dev: bool) -> list[Path]:
    files = [Path(f) for f in given] if given else [data_root() / f for f in DEFAULT_FILES]
    for f in files:
        if not f.is_file():
            raise InvalidArgument(f"training file {f} does not exist")
        if re.search(r"(^|[_\-.])dev", f.stem.lower()) and not allow_dev:
            raise InvalidArgument(f"{f.name} looks like a dev file (report-only data); pass --allow-dev to train on it")
    return files


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from compressors.projector import DEFAULT_PATH
    from compressors.soft_recipe import train
    from compressors.soft_training import TrainConfig
    from middleware.generation import prompt as prompts
    from middleware.models import ModelRegistry

    files = training_files(args.data, args.allow_dev)
    torch.set_num_threads(args.threads)
    settings = common.settings(args)
    models = ModelRegistry(settings)
    local = models.local_runtime(args.model).model
    # The Generate prompt itself: training reads the soft tokens exactly where serving puts them.
    render = prompts.default_messages
    config = TrainConfig(k=args.k, hidden=args.hidden, seed=args.seed, batch=args.batch, recon_steps=args.recon_steps,
                         qa_steps=args.qa_steps, lr=args.lr, recon_chunks=args.recon_chunks,
                         chunk_words=args.chunk_words, chunking=args.chunking,
                         qa_recon_batch=args.qa_recon_batch,
                         qa_recon_weight=args.qa_recon_weight, recon_tokens=args.recon_tokens,
                         lexical_tokens=args.lexical_tokens, qa_distractors=args.qa_distractors,
                         qa_two_gold_repeat=args.qa_two_gold_repeat)
    out = Path(args.out) if args.out else DEFAULT_PATH
    cache = Path(args.cache_dir) if args.cache_dir else settings.resolved_cache_dir() / "soft-training"
    log_path = Path(args.log) if args.log else out.with_suffix(".log.jsonl")
    print(f"training on {', '.join(str(f) for f in files)}; loss log: {log_path}", file=sys.stderr)
    run = train(local, models.embedder(), render, files, config, cache_dir=cache, log_path=log_path,
                progress=lambda total, desc: tqdm(total=total, desc=desc, file=sys.stderr,
                                                  disable=None if not args.progress else False))
    run.projector.save(out, run.metadata)
    summary = {k: v for k, v in run.metadata.items() if k != "loss_curve"}
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_commands(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("train-projector", help="train the soft-token projector (method 'soft') on local data")
    p.add_argument("--data", action="append", help="a training file in the HotpotQA row format (repeatable; "
                   "default: the HotpotQA and NQ training files under $RAGPRESS_DATA)")
    p.add_argument("--allow-dev", action="store_true", help="allow files named *dev* (never for shipped weights)")
    p.add_argument("--out", default=None, help="weights file (default: the shipped compressors/data/soft_projector.npz)")
    p.add_argument("--log", default=None, help="loss log, one JSON line per step (default: beside --out)")
    p.add_argument("--cache-dir", default=None, help="where encoder vectors are cached (default: cache_dir/soft-training)")
    p.add_argument("--model", default="local/smollm2", help="the local model the soft tokens are for")
    p.add_argument("--k", type=int, default=2, help="soft tokens per chunk (per document with --chunk-words 0)")
    p.add_argument("--chunk-words", type=int, default=32,
                   help="cut documents into chunks of this many words, one vector each (0: one vector per "
                        "document)")
    p.add_argument("--chunking", choices=("words", "sentences"), default="words",
                   help="windows of --chunk-words words (a short tail joins the window before it), or chunks "
                        "of whole sentences of at least --chunk-words words")
    p.add_argument("--lexical-tokens", type=int, default=64,
                   help="the lexical channel reads each chunk's first N tokens under the local model's tokenizer "
                        "(0: the sentence vector only)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--recon-steps", type=int, default=500)
    p.add_argument("--qa-steps", type=int, default=300)
    p.add_argument("--recon-chunks", type=int, default=2000, help="chunks drawn for the reconstruction stage")
    p.add_argument("--recon-tokens", type=int, default=48, help="a chunk's first tokens that reconstruction regenerates")
    p.add_argument("--qa-recon-batch", type=int, default=4,
                   help="reconstruction items added to each question-answering batch (keeps the passage carried)")
    p.add_argument("--qa-recon-weight", type=float, default=0.75, help="their share of that batch's loss")
    p.add_argument("--qa-distractors", type=int, default=1,
                   help="non-gold passages of the same row mixed (in a shuffled order) into each training question's "
                        "passages")
    p.add_argument("--qa-two-gold-repeat", type=int, default=1,
                   help="training questions with two or more gold passages appear this many times")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: keep it small)")
    p.add_argument("--progress", action="store_true", help="show progress bars even when stderr is not a terminal")
    p.add_argument("--config", default=None, help="TOML settings file")
    p.set_defaults(func=cmd_train)
