"""The projector's training recipe end to end: data, cached vectors, the three stages of
:mod:`compressors.soft_training`, held-out figures, and the metadata saved with the weights.

The service's ``ragpress train-projector`` calls :func:`train` with the local model, the
encoder and the prompt renderer it injects; nothing here reads settings or files other
than the ones it is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from compressors import context as ctx
from compressors.projector import (Projector, ProjectorConfig, chunks, document_text, encoder_id, input_table,
                                   inverse_document_frequency, token_rows)
from compressors.soft_data import (Passage, QAExample, distinct_passages, held_out, qa_example, qa_examples, read_rows,
                                   with_distractors)
from compressors.soft_forcing import Forced, Forcer, Render
from compressors.soft_training import (RECONSTRUCT_QUESTION, Item, TrainConfig, VectorCache, cpu_seconds,
                                       ridge_init, run_stage, soft_nll, to_json, torch_projector)
from middleware.embedders import Embedder
from middleware.errors import InvalidArgument
from middleware.llm.local import LocalModel
from middleware.types import ContextFormat, Document


@dataclass(frozen=True)
class TrainingRun:
    projector: Projector
    metadata: dict[str, Any]


def passages_context(example: QAExample) -> str:
    """The gold passages as the pipeline would assemble them uncompressed (titles, blank lines)."""
    docs = [Document(id=str(i), title=p.title, text=p.text) for i, p in enumerate(example.passages)]
    return ctx.assemble(docs, ContextFormat())


def training_questions(rows: Sequence[dict], config: TrainConfig) -> list[QAExample]:
    """The question-answering stage's examples: every question outside the held-out fold, with
    ``config.qa_distractors`` of its row's other passages mixed in, and those with two or more
    gold passages repeated ``config.qa_two_gold_repeat`` times. (The held-out figures keep
    the gold passages alone.)"""
    if config.qa_distractors < 0 or config.qa_two_gold_repeat < 1:
        raise InvalidArgument(f"qa_distractors must be 0 or more and qa_two_gold_repeat 1 or more (got "
                              f"{config.qa_distractors} and {config.qa_two_gold_repeat})")
    out = []
    for row in rows:
        example = qa_example(row)
        if example is None or held_out(example.id):
            continue
        times = config.qa_two_gold_repeat if len(example.passages) >= 2 else 1
        out.extend([with_distractors(example, row, config.qa_distractors, config.seed)] * times)
    return out


def text_nll(forcer: Forcer, examples: Sequence[QAExample], contexts: Sequence[str], batch: int = 8,
             memo: dict[str, float] | None = None) -> list[float]:
    """Per-example summed NLL of the answer's own tokens with a text context (no gradients).

    ``memo`` (prompt digest -> NLL) skips prompts scored before: these figures depend only
    on the frozen LM and the text, not on the projector.
    """
    import torch

    memo = {} if memo is None else memo
    seqs = [Forced(tuple(forcer.text_prompt(e.question, c)), (), (), forcer.answer_ids(e.answer, end=False))
            for e, c in zip(examples, contexts)]
    keys = [hashlib.sha1(json.dumps([s.ids, s.target]).encode()).hexdigest() for s in seqs]
    todo = [i for i, key in enumerate(keys) if key not in memo]
    with torch.no_grad():
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            for i, value in zip(chunk, forcer.nll([seqs[i] for i in chunk])):
                memo[keys[i]] = float(value)
    return [memo[key] for key in keys]


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _per_token(nll: Sequence[float], counts: Sequence[int]) -> float:
    return float(sum(nll) / max(1, sum(counts)))


def next_items_passages(items: Sequence[Item]) -> list[Item]:
    """The control: each item's question and target with the next item's soft-token inputs
    (another question's passages); empty for fewer than two items."""
    if len(items) < 2:
        return []
    return [replace(items[(i + 1) % len(items)], question=it.question, target=it.target) for i, it in enumerate(items)]


def held_out_scores(forcer: Forcer, module: Any, items: Sequence[Item], k: int, none: float,
                    full: float) -> dict[str, float | None]:
    """Answer NLL per token of ``items`` with their soft tokens (``soft``) and with the next
    item's (``shuffled_soft``, the control: another question's passages), and the gap the
    former closes between ``none`` and ``full`` (per-token NLL without context, with the
    passages in full)."""
    counts = [len(it.target) for it in items]
    others = next_items_passages(items)
    soft = _per_token(soft_nll(forcer, module, items, k), counts)
    ctrl = _per_token(soft_nll(forcer, module, others, k), counts) if others else None
    gap = none - full
    return {"soft": soft, "shuffled_soft": ctrl, "gap_closed": (none - soft) / gap if gap else None}


def train(local: LocalModel, embedder: Embedder, render: Render, files: Sequence[Path], config: TrainConfig,
          *, cache_dir: Path | None = None, log_path: Path | None = None,
          progress: Callable[[int, str], Any] | None = None) -> TrainingRun:
    """Train a projector from ``files`` (HotpotQA-format rows) and return it with its metadata.

    ``progress(total, description)`` returns a tqdm-like bar (``update``, ``set_postfix``, ``close``).
    """
    import torch

    if not files:
        raise InvalidArgument("train-projector needs at least one training file")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    started, cpu0, load0 = time.perf_counter(), cpu_seconds(), os.getloadavg()
    rows = [row for f in files for row in read_rows(f)]
    examples = qa_examples(rows)
    train_qa = training_questions(rows, config)
    test_qa = [e for e in examples if held_out(e.id)]
    # Held-out questions' passages stay out of reconstruction too.
    test_ids = {e.id for e in test_qa}
    units = lambda ps: [Passage(p.title, c) for p in ps for c in chunks(p.text, config.chunk_words, config.chunking)]  # noqa: E731
    passages = units(distinct_passages(r for r in rows if str(r.get("id", "")) not in test_ids))
    rng.shuffle(passages)
    passages = passages[: config.recon_chunks]
    if not train_qa or not passages:
        raise InvalidArgument("the training files hold no usable questions or passages")

    bar = progress or (lambda total, desc: _Silent())
    cache = VectorCache(embedder, cache_dir)
    needed = passages + [p for e in examples + train_qa for p in units(e.passages)]
    enc = bar(len({document_text(p.title, p.text) for p in needed}), "encoding passages (cached)")
    cache.vectors(needed, enc.update)
    enc.close()
    forcer = Forcer(local, render, config.max_answer_tokens)
    pconf = ProjectorConfig(k=config.k, hidden=config.hidden, in_dim=int(cache.vectors(passages[:1]).shape[1]),
                            out_dim=int(local.config.hidden_size), encoder=encoder_id(embedder.name),
                            model=local.name, chunk_words=config.chunk_words,
                            chunking=config.chunking, lexical_tokens=config.lexical_tokens)
    table = idf = None
    if config.lexical_tokens:
        # idf over the training documents (held-out questions' passages left out), whole documents
        table = input_table(local.model)
        documents = distinct_passages(r for r in rows if not held_out(str(r.get("id", ""))))
        idf = inverse_document_frequency(forcer.tok, [document_text(p.title, p.text) for p in documents], len(table))
    module = torch_projector(pconf, config.seed, table, idf)
    recon_vecs = cache.vectors(passages)
    r2 = ridge_init(module, forcer, passages, recon_vecs, config)

    def tokens(ps: Sequence[Passage]) -> Any:
        """The lexical channel's input for each unit: its encoder text's first tokens."""
        if not config.lexical_tokens:
            return None
        return token_rows(forcer.tok, [document_text(p.title, p.text) for p in ps], config.lexical_tokens)

    # The LM regenerates a chunk's own words (the title is in every chunk's vector; a whole
    # document, chunk_words 0, is regenerated from its title on).
    recon_text = (lambda p: p.text) if config.chunk_words else (lambda p: document_text(p.title, p.text))
    recon_tokens = tokens(passages)
    recon_items = [Item(RECONSTRUCT_QUESTION, recon_vecs[i:i + 1], tuple(
        forcer.tok(recon_text(p), add_special_tokens=False)["input_ids"][: config.recon_tokens]),
        None if recon_tokens is None else recon_tokens[i:i + 1]) for i, p in enumerate(passages)]
    qa_item = lambda e, end: Item(e.question, cache.vectors(units(e.passages)),  # noqa: E731
                                  forcer.answer_ids(e.answer, end), tokens(units(e.passages)))
    train_items, test_items = [qa_item(e, True) for e in train_qa], [qa_item(e, False) for e in test_qa]
    counts = [len(it.target) for it in test_items]

    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("", encoding="utf-8")

    def log_line(entry: dict) -> None:
        if log_path is not None:  # appended line by line: a killed run leaves its log readable
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    evals: dict[str, Any] = {}
    if test_items:
        memo_path = cache_dir / "text-nll.json" if cache_dir else None
        memo = json.loads(memo_path.read_text()) if memo_path and memo_path.is_file() else {}
        ev = bar(2 * len(test_qa), "held-out: no context and full passages")
        none = text_nll(forcer, test_qa, [""] * len(test_qa), memo=memo)
        ev.update(len(test_qa))
        full = text_nll(forcer, test_qa, [passages_context(e) for e in test_qa], memo=memo)
        ev.update(len(test_qa))
        ev.close()
        if memo_path is not None:
            memo_path.write_text(json.dumps(memo))
        evals = {"questions": len(test_qa), "none": _per_token(none, counts), "full": _per_token(full, counts)}

    def evaluate(stage: str) -> None:
        if not test_items:
            return
        evals[stage] = held_out_scores(forcer, module, test_items, config.k, evals["none"], evals["full"])
        log_line({"stage": f"eval:{stage}", **evals[stage]})

    evaluate("ridge")
    total = config.recon_steps + config.qa_steps
    steps_bar = bar(total, "training the projector")
    recon_losses = run_stage("reconstruction", forcer, module, recon_items, config.recon_steps, config, rng,
                             log_line, steps_bar)
    evaluate("reconstruction")
    qa_losses = run_stage("qa", forcer, module, train_items, config.qa_steps, config, rng, log_line, steps_bar,
                          mix=recon_items, mix_batch=config.qa_recon_batch, mix_weight=config.qa_recon_weight)
    steps_bar.close()
    evaluate("qa")

    metadata = {
        "config": to_json(config),
        "data": [{"file": f.name, "sha1": _digest(f)} for f in files],
        "train_questions": len(train_qa), "held_out_questions": len(test_qa),
        "reconstruction_chunks": len(passages), "ridge_r2": round(r2, 4),
        "loss_curve": {"reconstruction": [round(x, 4) for x in recon_losses], "qa": [round(x, 4) for x in qa_losses]},
        "held_out_nll_per_token": evals,
        "wall_seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(cpu_seconds() - cpu0, 1),
        "load_average_start": [round(x, 2) for x in load0], "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "final_loss": {"reconstruction": statistics.fmean(recon_losses[-10:]) if recon_losses else None,
                       "qa": statistics.fmean(qa_losses[-10:]) if qa_losses else None},
    }
    return TrainingRun(module.export(), metadata)


class _Silent:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **kw: Any) -> None: ...

    def close(self) -> None: ...


